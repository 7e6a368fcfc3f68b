"""Reading ossec.conf from disk through the stages, and the checks that need the disk."""

from __future__ import annotations

import codecs
import configparser
import dataclasses
import errno
import os
import stat
from collections.abc import Collection
from pathlib import Path

from ..errors import ConfigError, ConfigProblem
from . import perms
from .model import Config
from .rules import build_config
from .values import show
from .xmlreader import XmlError, read_document

# ossec.conf is a few kilobytes; anything this large is a mistake, and reading it would only
# cost memory.
MAX_FILE_BYTES = 16 * 1024 * 1024

_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def load_config(
    path: str | os.PathLike[str], known_regions: Collection[str], *, strict_perms: bool = True
) -> Config:
    """Read and parse the file at ``path``; a file that cannot be read is a problem of the
    file as a whole (no line), naming the reason. A file that other users could change is
    refused before it is read (``perms``), or only warned about without ``strict_perms``."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as handle:
            info = os.fstat(handle.fileno())
            loose = perms.check(name, info, strict=strict_perms)
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        reason = error.strerror or str(error)
        if error.errno == errno.EACCES:
            reason += " (run check-config as root or as the manager's user)"
        raise ConfigError([ConfigProblem(name, 0, f"cannot read the file: {reason}")]) from None
    config = parse_config(data, name, known_regions)
    if loose is not None:
        config = dataclasses.replace(config, warnings=(loose, *config.warnings))
    return _warn_readable_secrets(config, info.st_mode)


def parse_config(data: bytes, path: str, known_regions: Collection[str]) -> Config:
    """Parse ossec.conf content; raise ConfigError listing every error found, in line order.

    ``known_regions`` holds every region valid for CloudWatch Logs in any partition.
    """
    if len(data) > MAX_FILE_BYTES:
        message = f"file too large: more than {MAX_FILE_BYTES // (1024 * 1024)} MiB"
        raise ConfigError([ConfigProblem(path, 0, message)])
    for bom, encoding in _WIDE_BOMS:
        if data.startswith(bom):
            message = f"the file is {encoding}; the manager reads only UTF-8: save it as UTF-8"
            raise ConfigError([ConfigProblem(path, 1, message)])
    try:
        roots, notes = read_document(data)
    except XmlError as error:
        problem = ConfigProblem(path, error.line, f"XML syntax error: {error.message}")
        raise ConfigError([problem]) from None
    return build_config(roots, path, known_regions, notes)


def _warn_readable_secrets(config: Config, mode: int) -> Config:
    """Add a warning per service holding a secret_key when other users may read the file."""
    if not mode & stat.S_IROTH:
        return config
    extra = [
        ConfigProblem(
            config.path,
            service.line,
            f"secret_key is in a file that other users can read (mode {stat.S_IMODE(mode):04o});"
            " restrict it (chmod o-r) or use aws_profile or iam_role_arn",
        )
        for wodle in config.wodles
        for service in wodle.services
        if service.secret_key
    ]
    if not extra:
        return config
    warnings = tuple(sorted((*config.warnings, *extra), key=lambda p: p.line))
    return dataclasses.replace(config, warnings=warnings)


def profile_warnings(config: Config, home: str) -> list[ConfigProblem]:
    """A warning per service whose ``aws_profile`` is in none of the files that the service
    reads: it runs as the manager's user with ``home`` as its home, so boto3 looks in
    ``home/.aws/credentials`` and ``home/.aws/config``, not in the ``/root/.aws/`` that the
    old module, run as root, read."""
    credentials = Path(home) / ".aws" / "credentials"
    shared = Path(home) / ".aws" / "config"
    known: set[str] = set()
    unreadable: list[str] = []
    for file, in_config in ((credentials, False), (shared, True)):
        try:
            known |= _profiles(file, in_config)
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError, configparser.Error) as error:
            reason = error.strerror if isinstance(error, OSError) else str(error).splitlines()[0]
            unreadable.append(f"{file} ({reason})")
    found: list[ConfigProblem] = []
    for wodle in config.wodles:
        for service in wodle.services:
            profile = service.aws_profile
            if profile is None or profile in known:
                continue
            if unreadable:
                message = (
                    f"aws_profile {show(profile)} could not be checked: cannot read "
                    f"{' and '.join(unreadable)}"
                )
            else:
                message = (
                    f"aws_profile {show(profile)} is in neither {credentials} nor {shared}, "
                    f"the files the service reads (it runs as the manager's user, home {home}); "
                    f"copy the profile there (e.g. from /root/.aws/) and make both files "
                    f"readable by that user"
                )
            found.append(ConfigProblem(config.path, service.line, message))
    return found


def _profiles(file: Path, in_config: bool) -> set[str]:
    """The profile names in a shared credentials file, or in a shared config file (where a
    profile is ``[profile NAME]``, or ``[default]``)."""
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    with open(file, encoding="utf-8") as handle:
        parser.read_file(handle)
    names = set()
    for section in parser.sections():
        name = section.strip()
        if not in_config or name == "default":
            names.add(name)
        elif name.startswith("profile ") or name.startswith("profile\t"):
            names.add(name[len("profile") :].strip())
    return names
