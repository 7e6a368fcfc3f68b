"""Refusing configuration files that users other than root, us and the manager's group can change.

ossec.conf, an instance's file and aws-wodle.toml decide where events come from
(``service_endpoint``), what is dropped (``discard_regex``) and what is deleted in AWS
(``remove_log_streams``): a user who can rewrite one of them steers a process that runs as
root or as the manager's user. As sshd's StrictModes and Filebeat's strict.perms do, such a
file is refused: it must be owned by root or by the user running aws-wodle, writable by no
other user, and by no group but the manager's; the same holds for the directory that holds
it (where another user could put a file of their own in its place), except that a directory
with the sticky bit (``/tmp``) only lets a user replace their own files.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import stat

from ..errors import ConfigError, ConfigProblem

# The manager's group: Wazuh ships ossec.conf as root:wazuh 0660, OSSEC and Wazuh before 4.3
# as root:ossec. Its members are the manager's own processes, trusted with the file already.
MANAGER_GROUPS = ("wazuh", "ossec")

SWITCH = "--no-strict-perms"


def check(path: str, info: os.stat_result, *, strict: bool) -> ConfigProblem | None:
    """Nothing when only root, we and the manager's group may change the file at ``path``
    (``info``: the file as opened); else one problem naming what is wrong and the fix,
    raised as a ConfigError when ``strict``, returned as a warning when not."""
    reasons: list[str] = []
    fixes: list[str] = []
    _judge(path, info, "", reasons, fixes)
    for folder in _folders(path):
        try:
            folder_info = os.stat(folder)
        except OSError:
            continue  # we opened the file through it: a directory we cannot stat is not ours
        _judge(folder, folder_info, f"its directory {folder} ", reasons, fixes)
    if not reasons:
        return None
    detail = f"other users could change it: {'; '.join(reasons)}; fix: {' && '.join(fixes)}"
    if strict:
        raise ConfigError([ConfigProblem(path, 0, f"refused: {detail}")])
    return ConfigProblem(path, 0, f"{detail} (used anyway: {SWITCH})")


def _folders(path: str) -> list[str]:
    """The directory named in ``path`` and, when a symbolic link leads elsewhere, the one
    holding the file itself."""
    named = os.path.dirname(os.path.abspath(path))
    real = os.path.dirname(os.path.realpath(path))
    return [named] if real == named else [named, real]


def _judge(
    path: str, info: os.stat_result, what: str, reasons: list[str], fixes: list[str]
) -> None:
    """Add what lets another user change ``path`` (a file, or a directory when ``what``
    names it) to ``reasons``, and the command that ends it to ``fixes``."""
    me = os.geteuid()
    if info.st_uid not in (0, me):
        reasons.append(f"{what}owned by {_user(info.st_uid)}".lstrip())
        fixes.append(f"chown root {path}")
    mode = stat.S_IMODE(info.st_mode)
    if stat.S_ISDIR(info.st_mode) and mode & stat.S_ISVTX:
        return  # sticky: others may add files, never rename or remove ours
    by_group = bool(mode & stat.S_IWGRP) and info.st_gid not in _trusted_groups()
    by_all = bool(mode & stat.S_IWOTH)
    if not (by_group or by_all):
        return
    who = " and ".join(
        name
        for name, on in ((f"group {_group(info.st_gid)}", by_group), ("every user", by_all))
        if on
    )
    sticky = ", no sticky bit" if stat.S_ISDIR(info.st_mode) else ""
    reasons.append(f"{what}writable by {who} (mode {mode:04o}{sticky})")
    fixes.append(f"chmod {'g' if by_group else ''}{'o' if by_all else ''}-w {path}")


def _trusted_groups() -> set[int]:
    """The groups that may write the file: the manager's, and the one we run as."""
    gids = {os.getegid()}
    with contextlib.suppress(KeyError):  # a uid without a passwd entry: its egid stands
        gids.add(pwd.getpwuid(os.geteuid()).pw_gid)
    for name in MANAGER_GROUPS:
        try:
            gids.add(grp.getgrnam(name).gr_gid)
        except KeyError:
            continue
    return gids


def _user(uid: int) -> str:
    try:
        return f"user {pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _group(gid: int) -> str:
    try:
        return f"{grp.getgrgid(gid).gr_name} (gid {gid})"
    except KeyError:
        return str(gid)
