# aws-wodle %preun ($1: 0 on erase, 1 when an upgrade replaces this version): on erase,
# stops the service and every aws-wodle@ instance (each commits its position on SIGTERM),
# as %systemd_preun does, then deletes the virtualenv the %posttrans built. On an upgrade
# nothing happens here: the new package's %posttrans stops the running units, rebuilds the
# virtualenv and starts them again.
if [ "$1" -eq 0 ]; then
    if [ -d /run/systemd/system ]; then
        units=$(systemctl list-units --plain --no-legend --all \
            'aws-wodle.service' 'aws-wodle@*.service' 2>/dev/null |
            while read -r unit _; do echo "$unit"; done)
        if [ -n "$units" ]; then
            # shellcheck disable=SC2086 # one word per unit
            systemctl stop $units || :
        fi
    fi
    rm -rf /opt/aws-wodle
fi
exit 0
