# aws-wodle %post ($1: 1 on install, 2 on upgrade), what %systemd_post does, written out
# because the macros are not everywhere: systemd learns of the units and, on a first
# install, applies the system's presets to aws-wodle.service (on RHEL and its kin the
# default preset disables it: it is not enabled). The virtualenv is built in %posttrans,
# once the old package's files are gone.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || :
    if [ "$1" -eq 1 ]; then
        systemctl --no-reload preset aws-wodle.service || :
    fi
fi
exit 0
