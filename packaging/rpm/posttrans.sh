# aws-wodle %posttrans, after install and after upgrade: builds the virtualenv /opt/aws-wodle
# with /usr/bin/python3.11 from the wheels the package carries (no network), and creates the
# state directory for the manager's user. Here rather than in %post: during an upgrade the
# old package's wheels are still on disk in %post, and pip would take a newer aws-wodle from
# them on a downgrade. Active units are stopped first and started again after; the service
# is neither enabled nor started on a first install: the old module's positions are
# imported first (README, "Moving over from the old module").
VENV=/opt/aws-wodle
PYTHON=/usr/bin/python3.11
WHEELS=/usr/share/aws-wodle/wheels
STATE_DIR=/var/ossec/var/aws-wodle
SERVICE_USER=wazuh

have_systemd() {
    [ -d /run/systemd/system ]
}

active_units() {
    have_systemd || return 0
    systemctl list-units --plain --no-legend --state=active \
        'aws-wodle.service' 'aws-wodle@*.service' 2>/dev/null |
        while read -r unit _; do echo "$unit"; done
}

# Python and pip see none of the caller's environment (PYTHONPATH, PIP_FIND_LINKS, ...) nor
# any pip.conf: only the package's wheels go into the virtualenv.
clean() {
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin PIP_CONFIG_FILE=/dev/null \
        PIP_ROOT_USER_ACTION=ignore "$@"
}

build_venv() {
    rm -rf "$VENV"
    if ! clean "$PYTHON" -m venv "$VENV"; then
        echo "aws-wodle: $PYTHON -m venv failed; is python3.11 installed?" >&2
        return 1
    fi
    if ! clean "$VENV/bin/python" -m pip install --quiet --no-index --no-cache-dir \
            --disable-pip-version-check --find-links "$WHEELS" aws-wodle; then
        rm -rf "$VENV"
        echo "aws-wodle: the wheels in $WHEELS did not install on $PYTHON" >&2
        return 1
    fi
}

first=no
[ -e "$VENV/bin/aws-wodle" ] || first=yes
units=$(active_units)
if [ -n "$units" ]; then
    # shellcheck disable=SC2086 # one word per unit
    systemctl stop $units || :
fi
build_venv || exit 1
if [ -n "$units" ]; then
    # shellcheck disable=SC2086
    systemctl start $units || echo "aws-wodle: could not start again: $units" >&2
fi
if getent passwd "$SERVICE_USER" >/dev/null; then
    # Not install -d, which would follow a link put in the directory's place.
    "$VENV/bin/aws-wodle" state-dir --owner "$SERVICE_USER" "$STATE_DIR" || :
else
    echo "aws-wodle: no user '$SERVICE_USER' here (the manager's): $STATE_DIR was not" \
        "created; the service creates it when it starts on a manager host." >&2
fi
if [ "$first" = yes ]; then
    echo "aws-wodle is installed, not started. Next: import the old module's positions" \
        "(aws-wodle import-state), then: systemctl enable --now aws-wodle"
fi
exit 0
