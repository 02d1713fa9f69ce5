"""Domain errors: one base class, one subclass per condition.

Adapters map them to transport status in one place (``grpc_errors`` for gRPC,
``cli`` for the command line); the core raises nothing else on bad input.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldViolation:
    field: str
    description: str


class ProxyvoteError(Exception):
    """Base class of every error a caller can cause."""

    template = "{detail}"

    def __init__(self, detail: str = "", **kwargs):
        self.detail = detail
        self.kwargs = kwargs
        super().__init__(self.template.format(detail=detail, **kwargs))


class InvalidArgument(ProxyvoteError):
    """The request is malformed; ``violations`` names every bad field."""

    template = "invalid request: {detail}"

    def __init__(self, violations: list[FieldViolation]):
        self.violations = list(violations)
        detail = "; ".join(f"{v.field}: {v.description}" for v in self.violations)
        super().__init__(detail)


class TemplateRejected(InvalidArgument):
    """A tenant's memo template uses something the sandbox refuses; the violations name the lines."""


class AccountsFileInvalid(InvalidArgument):
    """An accounts file (CSV or Parquet) has bad lines; ``violations`` names each one as
    ``FILE:line N: column`` (``row N`` in Parquet). Nothing of the file was stored."""


class NotFound(ProxyvoteError):
    template = "{kind} not found: {detail}"

    def __init__(self, kind: str, name: str):
        self.kind_name = kind
        self.name = name
        super().__init__(name, kind=kind)


@dataclass(frozen=True, slots=True)
class PolicyProblem:
    file: str
    line: int
    column: int
    message: str
    rule_id: str = ""
    path: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        rule = f" [rule {self.rule_id}]" if self.rule_id else ""
        return f"{where}:{rule} {self.message}"


class PolicyInvalid(ProxyvoteError):
    """A policy or taxonomy document failed validation; ``problems`` lists all."""

    template = "invalid policy: {detail}"

    def __init__(self, problems: list[PolicyProblem]):
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))

    @classmethod
    def single(cls, file: str, message: str) -> PolicyInvalid:
        return cls([PolicyProblem(file, 0, 0, message)])


class AlreadyExists(ProxyvoteError):
    template = "{kind} already exists: {detail}"

    def __init__(self, kind: str, name: str):
        super().__init__(name, kind=kind)


class Aborted(ProxyvoteError):
    """A write lost a race or was based on a stale read; re-read and retry."""

    template = "aborted: {detail}"


class PermissionDenied(ProxyvoteError):
    template = "permission denied: {detail}"


class Unauthenticated(ProxyvoteError):
    template = "unauthenticated: {detail}"


class DeadlineExceeded(ProxyvoteError):
    """The caller's deadline passed: the request was neither decided nor stored."""

    template = "deadline exceeded: {detail}"


class Overloaded(ProxyvoteError):
    """Too many calls at once: this one was refused without being queued; retry after a pause."""

    template = "overloaded: {detail}"

    def __init__(self, detail: str, retry_after: float):
        self.retry_after = retry_after
        super().__init__(detail)


class Unavailable(ProxyvoteError):
    """A dependency (the database) cannot be reached; the call may be retried."""

    template = "unavailable: {detail}"


class BundledPolicyChanged(ProxyvoteError):
    """A bundled policy file differs from the stored version of the same number (the server stops)."""


class NotMigrated(ProxyvoteError):
    """The database is not at the schema this build needs (the server stops)."""

    template = "the database is not at the current schema ({detail}): run `proxyvote db upgrade`"


class ConfigurationError(ProxyvoteError):
    """A setting (flag or environment variable) that cannot be used; the command stops."""

    template = "configuration: {detail}"


class TransportConfigError(ConfigurationError):
    """The transport settings are incomplete, unreadable or unsafe; the message says which."""

    template = "{detail}"


class RenderFailed(ProxyvoteError):
    """A tenant's memo template failed while rendering (time, size or a sandbox refusal)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)
