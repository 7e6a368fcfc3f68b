"""The exception tree of aws-wodle; every outside error is translated into one of these.

WodleError
+-- ConfigError          the configuration is invalid (exit 2); holds every problem found
+-- StateError           the state file cannot be used
|   +-- StateLocked      another process holds the state file
+-- ForwardError         the manager's queue socket cannot take an event right now
+-- AwsError             a CloudWatch Logs or STS call failed, already translated
    +-- AccessDenied         the credentials lack a permission (names the action)
    +-- GroupNotFound        the log group (or stream) does not exist
    +-- RegionUnavailable    the region is not enabled for the account, or unreachable
    +-- Throttled            retries were exhausted under ThrottlingException
    +-- TokenRejected        a stored GetLogEvents token was refused
    +-- CredentialsError     no usable credentials (profile missing, role not assumable)
    +-- AnswerRefused        an answer larger than CloudWatch Logs ever sends, not read
"""

from __future__ import annotations

from dataclasses import dataclass


class WodleError(Exception):
    """Base of every error that aws-wodle raises on purpose."""


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a configuration file, located by file and line."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        # Line 0: a problem of the file as a whole (it cannot be read, it is too large).
        if self.line <= 0:
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}: {self.message}"


class ConfigError(WodleError):
    """The configuration is invalid; ``problems`` lists every problem found, in file order."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class StateError(WodleError):
    """The state file cannot be opened or used."""


class StateLocked(StateError):
    """Another process holds the state file."""


class ForwardError(WodleError):
    """The manager's queue socket refused an event; ``reason`` is a short errno name."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class AwsError(WodleError):
    """An AWS call failed; ``code`` is AWS's error code when one was given."""

    def __init__(self, message: str, code: str = "", operation: str = "") -> None:
        self.code = code
        self.operation = operation
        super().__init__(message)


class AccessDenied(AwsError):
    """The credentials lack the permission for ``operation`` (e.g. logs:DeleteLogStream)."""

    @property
    def action(self) -> str:
        return f"logs:{self.operation}" if self.operation else "unknown action"


class GroupNotFound(AwsError):
    """The log group or log stream does not exist."""


class RegionUnavailable(AwsError):
    """The region is not enabled for the account, or does not answer."""


class Throttled(AwsError):
    """CloudWatch kept answering ThrottlingException past every retry."""


class TokenRejected(AwsError):
    """A stored GetLogEvents token was refused (expired or invalid)."""


class CredentialsError(AwsError):
    """No usable credentials: a missing profile, bad keys or a role that cannot be assumed."""


class AnswerRefused(AwsError):
    """The endpoint answered beyond CloudWatch Logs' documented limits (a page past its
    bytes or events, an event past its size): refused as it was read, not retried, so the
    group fails this cycle and is read again from the same position the next."""
