"""The aws-s3 wodles of ossec.conf, read by stages, with the file and line of every problem.

1. ``xmlreader``: the manager's XML dialect, read as the manager reads it (a literal ``&``,
   no entities, ``\\<``, several roots), into elements with their lines;
2. ``rules``: the manager's rules for aws-s3 wodles (what it refuses is an error, what only
   the old script would fail on is a broken service, the rest warnings), with ``service``
   for the options of one CloudWatch Logs service and ``values`` for single values;
3. ``model``: the frozen configuration the rest of aws-wodle uses;
4. ``describe``: the configuration in words, for ``check-config``.

``load`` runs them over a file. Beside them, aws-wodle.toml is read by the same stages:
``tomlreader`` (with ``tomllines``, the line of each key), ``settingsrules`` with
``settingskinesis`` and ``settingsvalues``, ``settingsmodel`` and ``settingsdescribe``;
``settings`` runs them over a file and merges it with the flags. A service's options
(``CloudWatchService``, with its ``DiscardRule``) are in the package's ``model``, which every
folder may import.
"""

from ..model import CloudWatchService, DiscardRule
from .describe import describe_schedule, summary
from .load import MAX_FILE_BYTES, load_config, parse_config, profile_warnings
from .model import SKIP_ON_ERROR, BrokenService, Config, Wodle
from .rules import DEFAULT_INTERVAL_SECONDS
from .service import Findings, Option, build_service
from .values import parse_date, parse_interval

__all__ = [
    "DEFAULT_INTERVAL_SECONDS",
    "MAX_FILE_BYTES",
    "SKIP_ON_ERROR",
    "BrokenService",
    "CloudWatchService",
    "Config",
    "DiscardRule",
    "Findings",
    "Option",
    "Wodle",
    "build_service",
    "describe_schedule",
    "load_config",
    "parse_config",
    "parse_date",
    "parse_interval",
    "profile_warnings",
    "summary",
]
