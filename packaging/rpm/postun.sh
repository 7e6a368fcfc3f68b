# aws-wodle %postun ($1: 0 on erase, 1 after an upgrade): on erase, deletes the links made
# by `systemctl enable aws-wodle` (or aws-wodle@NAME), which would point at nothing, and has
# systemd forget the units. The state directory (the positions) stays, so that a reinstall
# resumes where collection stopped; remove /var/ossec/var/aws-wodle by hand to forget them
# (rpm has no purge). After an upgrade the new package's %posttrans has the units' care.
if [ "$1" -eq 0 ]; then
    for link in /etc/systemd/system/*.wants/aws-wodle.service \
                /etc/systemd/system/*.wants/aws-wodle@*.service; do
        if [ -L "$link" ]; then
            rm -f "$link"
        fi
    done
    # Drop-ins an operator wrote with `systemctl edit` are configuration: they stay.
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload || :
        systemctl reset-failed 'aws-wodle.service' 'aws-wodle@*.service' 2>/dev/null || :
    fi
fi
exit 0
