"""Builds ``dist/aws-wodle-VERSION-1.noarch.rpm`` for RHEL, Rocky, Alma and Amazon Linux 2023.

The same design as the .deb (packaging/build_deb.py), on the interpreter these systems ship
as a package beside their own (3.9 on RHEL 9 and Amazon Linux 2023, 3.6 on RHEL 8):
``/usr/bin/python3.11``. The package carries the wheels of aws-wodle and of its
dependencies for CPython 3.11, fetched with build_deb.py's functions (each requirement's
markers judged for 3.11), the systemd units in ``/usr/lib/systemd/system``, the example
configuration under ``/usr/share/doc/aws-wodle`` and ``/usr/bin/aws-wodle``, a link into the
virtualenv ``/opt/aws-wodle`` that its %posttrans builds offline with python3.11;
``packaging/rpm/`` has the spec's template and the scriptlets, which say what install,
upgrade and erase do.

Every dependency is pure Python today, so the package is ``noarch``; should one need
compiled wheels, they are fetched for ``--arch`` and the package becomes ``x86_64`` (or
``aarch64``). The wheels are cached in ``build/wheels/rpm-ARCH``; the package is built again
only when one of build_deb.py's ``INPUTS`` changed. Prints the package's path. Needs pip,
packaging and rpmbuild (``apt-get install rpm`` on Debian), not root.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from build_deb import (
    BUILD,
    MACHINES,
    NAME,
    PACKAGING,
    PLATFORMS,
    ROOT,
    build_own_wheel,
    dependency_wheels,
    inputs_digest,
    install,
    package_arch,
    project_version,
    run,
    stage_common,
)

# The interpreter of the virtualenv: RHEL 8 and 9, Rocky, Alma and Amazon Linux 2023 all
# package python3.11 (/usr/bin/python3.11); their own python3 is older than aws-wodle needs.
PYTHON = "3.11"
RELEASE = "1"
# rpm's name of each Debian architecture (build_deb.py's PLATFORMS are keyed by those).
RPM_ARCH = {debian: python for python, debian in MACHINES.items()}
SPEC = PACKAGING / "rpm" / "aws-wodle.spec.in"
# The spec's scriptlets, by the placeholder each fills.
SCRIPTLETS = {"POST": "post.sh", "POSTTRANS": "posttrans.sh", "PREUN": "preun.sh",
              "POSTUN": "postun.sh"}  # fmt: skip


def stage(root: Path, own: Path, deps: Path) -> None:
    """Lay out the package's files under ``root``, as the spec's %files lists them."""
    stage_common(root, units="usr/lib/systemd/system", own=own, deps=deps)
    install(PACKAGING / "rpm/copyright", root / "usr/share/licenses" / NAME / "copyright")
    # relative, as rpm's guidelines ask
    (root / "usr/bin" / NAME).symlink_to(f"../../opt/{NAME}/bin/{NAME}")
    (root / "opt" / NAME).mkdir(parents=True)  # %ghost: owned, made by the %posttrans
    for folder in [root, *(p for p in root.rglob("*") if p.is_dir() and not p.is_symlink())]:
        folder.chmod(0o755)


def source_date() -> int:
    """The changelog's date: SOURCE_DATE_EPOCH when set (reproducible builds), else now."""
    return int(os.environ.get("SOURCE_DATE_EPOCH", time.time()))


def spec(version: str, arch: str, stage_dir: Path) -> str:
    """The spec: the template with its values and scriptlets (``%`` doubled in these, which
    rpm would otherwise expand as macros)."""
    text = SPEC.read_text()
    for word, script in SCRIPTLETS.items():
        body = (PACKAGING / "rpm" / script).read_text().replace("%", "%%")
        text = text.replace(f"@{word}@", body)
    return (
        text.replace("@VERSION@", version)
        .replace("@ARCH@", arch)
        .replace("@STAGE@", str(stage_dir))
        .replace("@DATE@", time.strftime("%a %b %d %Y", time.gmtime(source_date())))
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--version", help="package version (default: pyproject.toml's)")
    parser.add_argument(
        "--arch",
        default=MACHINES.get(platform.machine(), "amd64"),
        choices=sorted(PLATFORMS),
        help="architecture of compiled wheels, if any are needed (default: %(default)s)",
    )
    parser.add_argument("--out", default=str(ROOT / "dist"), help="default: %(default)s")
    args = parser.parse_args()
    if shutil.which("rpmbuild") is None:
        raise SystemExit("rpmbuild is missing: apt-get install rpm")
    version = args.version or project_version()
    if "-" in version:
        raise SystemExit(f"rpm versions hold no '-': {version}")
    out = Path(args.out).resolve()
    key = inputs_digest("rpm", version, args.arch, str(out), PYTHON)
    stamp = BUILD / f"rpm-{version}.inputs"  # one per version: tests build two
    if stamp.is_file():
        built_key, _, built = stamp.read_text().partition("\n")
        if built_key == key and Path(built).is_file():
            print(built)  # nothing changed since it was built
            return 0
    BUILD.mkdir(exist_ok=True)
    own = build_own_wheel(BUILD / "rpm-own-wheel")
    deps = dependency_wheels(own, args.arch, (PYTHON,), BUILD / "wheels" / f"rpm-{args.arch}")
    arch = "noarch" if package_arch(deps, args.arch) == "all" else RPM_ARCH[args.arch]
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{NAME}-{version}-{RELEASE}.{arch}.rpm"
    with tempfile.TemporaryDirectory(dir=BUILD) as scratch:
        top = Path(scratch)
        root = top / "stage"
        root.mkdir()
        os.umask(0o022)
        stage(root, own, deps)
        spec_file = top / f"{NAME}.spec"
        spec_file.write_text(spec(version, arch, root))
        run(
            "rpmbuild", "-bb", "--quiet", "--define", f"_topdir {top}",
            "--define", f"_rpmdir {top / 'rpms'}",
            "--define", "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm",
            "--target", arch, str(spec_file),
        )  # fmt: skip
        shutil.move(top / "rpms" / target.name, target)
    stamp.write_text(f"{key}\n{target}")
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
