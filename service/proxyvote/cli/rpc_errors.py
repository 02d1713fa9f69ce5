"""What a failed call's status carries (``google.rpc.Status`` details), for the client commands."""

from __future__ import annotations


def status_details(exc) -> list:
    """The details packed in the call's status (none when it carries no ``google.rpc.Status``)."""
    from grpc_status import rpc_status

    try:
        status = rpc_status.from_call(exc)
    except (ValueError, AttributeError):
        return []
    return list(status.details) if status is not None else []


def field_violations(exc) -> list[tuple[str, str]]:
    """(field, description) of the status's ``BadRequest``."""
    from google.rpc import error_details_pb2

    for detail in status_details(exc):
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            return [(v.field, v.description) for v in bad.field_violations]
    return []


def error_reason(exc) -> str:
    """The ``ErrorInfo`` reason of the status (``ACCOUNTS_FILE_INVALID``...), or ""."""
    from google.rpc import error_details_pb2

    for detail in status_details(exc):
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info.reason
    return ""


def error_line(exc) -> str:
    """One line for the terminal: the code, and the violated fields when there are any."""
    violations = field_violations(exc)
    if violations:
        return f"error: {exc.code().name}: " + "; ".join(f"{f}: {d}" for f, d in violations)
    return f"error: {exc.code().name}: {exc.details()}"
