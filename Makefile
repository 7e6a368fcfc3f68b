# Two commands matter: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck bench parser-diff dist deb rpm systemd-test survival survival-check clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

lint: $(STAMP)
	$(BIN)/ruff check src tests scripts packaging tools
	$(BIN)/ruff format --check src tests scripts packaging tools

typecheck: $(STAMP)
	$(BIN)/mypy
	$(BIN)/mypy packaging

# Two workers: most tests wait on real processes, sockets and moto, not on the CPU.
# loadfile keeps each file's tests on one worker, in order: tests/test_systemd.py's share one
# container a Debian suite. (--dist loadgroup would not: with pytest 9 its xdist_group marks are ignored.)
test: lint typecheck
	$(BIN)/python -m pytest -n 2 --dist loadfile

# README.md's "What it survives" table, from the last complete test session's measurements
# (make test writes them to .pytest_cache/aws-wodle-survival.json, never to README.md).
survival: $(STAMP)
	$(BIN)/python tests/survival.py

# Exits 1 when README's table differs from the last session in its faults, how each is
# injected, or the events lost (the other cells change from run to run); CI runs it.
survival-check: $(STAMP)
	$(BIN)/python tests/survival.py --check

bench: $(STAMP)
	$(BIN)/python tests/bench.py $(ARGS)

# The config reader against the manager's own readers, built from a bare mirror of
# wazuh/wazuh (WAZUH_GIT, or ARGS="--wazuh-git DIR"); full corpus by default (3000 files,
# seed 1): e.g. make parser-diff ARGS="--seed 7 --count 1500 --out /tmp/pd".
# make test runs a smaller one (tests/test_manager_parser.py) when WAZUH_GIT is set.
parser-diff: $(STAMP)
	$(BIN)/python tools/manager-parser/parser_diff.py $(ARGS)

dist: $(STAMP)
	$(BIN)/python -m pip install --quiet build
	$(BIN)/python -m build

# dist/aws-wodle_VERSION_all.deb: wheels for Python 3.10-3.13, the units, maintainer
# scripts that build /opt/aws-wodle on install (packaging/build_deb.py says more).
deb: $(STAMP)
	$(BIN)/python packaging/build_deb.py

# dist/aws-wodle-VERSION-1.noarch.rpm for RHEL 8/9, Rocky, Alma and Amazon Linux 2023:
# wheels for their python3.11, the units, scriptlets that build /opt/aws-wodle on install
# (packaging/build_rpm.py says more). rpmbuild is Debian's rpm package, installed if missing.
rpm: $(STAMP)
	command -v rpmbuild >/dev/null || { apt-get update -q && apt-get install -y -q rpm; }
	$(BIN)/python packaging/build_rpm.py

# The package in Debian 12 and 13 containers under their real systemd (root; installs
# systemd-container and debootstrap if needed, caches the images in /var/lib/machines).
systemd-test: $(STAMP)
	$(BIN)/python -m pytest -v tests/test_systemd.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
