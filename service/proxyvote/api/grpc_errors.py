"""Domain errors to gRPC status: the one place that decides codes and details.

Every domain error (``proxyvote.errors``) is mapped here explicitly, to a code
and an ``ErrorInfo`` reason. Errors are written as code, message and a
``grpc-status-details-bin`` trailer (google.rpc.Status with ErrorInfo, and
BadRequest field violations where there are some), the same bytes
``abort_with_status`` would send, without raising, so they work with
``grpc_testing`` servers as well as real ones. An exception nobody mapped is a
bug of ours: INTERNAL, logged with the request id, never INVALID_ARGUMENT.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import re
import uuid

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from proxyvote.errors import (
    Aborted,
    AccountsFileInvalid,
    AlreadyExists,
    BundledPolicyChanged,
    ConfigurationError,
    DeadlineExceeded,
    InvalidArgument,
    NotFound,
    NotMigrated,
    Overloaded,
    PermissionDenied,
    PolicyInvalid,
    ProxyvoteError,
    RenderFailed,
    TemplateRejected,
    TransportConfigError,
    Unauthenticated,
    Unavailable,
)

log = logging.getLogger(__name__)

DOMAIN = "proxyvote.dev"
REQUEST_ID_HEADER = "x-request-id"
_CLEAN_ID = re.compile(r"[^A-Za-z0-9._:-]")
# The request id of the call this thread is serving, set by api/observability's interceptor.
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("proxyvote_request_id", default="")

# Each domain error: its status code and its ErrorInfo reason (UPPER_SNAKE_CASE, AIP-193).
MAPPING: dict[type[ProxyvoteError], tuple[grpc.StatusCode, str]] = {
    InvalidArgument: (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"),
    PolicyInvalid: (grpc.StatusCode.INVALID_ARGUMENT, "POLICY_INVALID"),
    AccountsFileInvalid: (grpc.StatusCode.INVALID_ARGUMENT, "ACCOUNTS_FILE_INVALID"),
    TemplateRejected: (grpc.StatusCode.INVALID_ARGUMENT, "TEMPLATE_REJECTED"),
    RenderFailed: (grpc.StatusCode.INVALID_ARGUMENT, "TEMPLATE_RENDER_FAILED"),
    NotFound: (grpc.StatusCode.NOT_FOUND, "NOT_FOUND"),
    AlreadyExists: (grpc.StatusCode.ALREADY_EXISTS, "ALREADY_EXISTS"),
    Aborted: (grpc.StatusCode.ABORTED, "STALE_OR_CONCURRENT_WRITE"),
    PermissionDenied: (grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_DENIED"),
    Unauthenticated: (grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED"),
    Unavailable: (grpc.StatusCode.UNAVAILABLE, "DATABASE_UNAVAILABLE"),
    DeadlineExceeded: (grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED"),
    Overloaded: (grpc.StatusCode.RESOURCE_EXHAUSTED, "OVERLOADED"),
    # Start-up errors: a server never answers with them, but if one escaped it is ours to fix.
    BundledPolicyChanged: (grpc.StatusCode.FAILED_PRECONDITION, "BUNDLED_POLICY_CHANGED"),
    NotMigrated: (grpc.StatusCode.FAILED_PRECONDITION, "DATABASE_NOT_MIGRATED"),
    ConfigurationError: (grpc.StatusCode.FAILED_PRECONDITION, "CONFIGURATION"),
    TransportConfigError: (grpc.StatusCode.FAILED_PRECONDITION, "TRANSPORT_CONFIGURATION"),
}


def mapping_of(exc: ProxyvoteError) -> tuple[grpc.StatusCode, str]:
    """The code and reason of the most specific mapped class; INTERNAL for an unmapped one."""
    for kind in type(exc).__mro__:
        if kind in MAPPING:
            return MAPPING[kind]
    return grpc.StatusCode.INTERNAL, "INTERNAL"


def code_of(exc: ProxyvoteError) -> grpc.StatusCode:
    return mapping_of(exc)[0]


def field_violations(exc: ProxyvoteError) -> list[tuple[str, str]]:
    if isinstance(exc, InvalidArgument):
        return [(v.field, v.description) for v in exc.violations]
    if isinstance(exc, PolicyInvalid):
        return [(p.path or "source", f"line {p.line}, column {p.column}: {p.message}") for p in exc.problems]
    return []


def status_of(exc: ProxyvoteError, request_id: str = "") -> status_pb2.Status:
    code, reason = mapping_of(exc)
    status = status_pb2.Status(code=code.value[0], message=str(exc)[:2000])
    info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN)
    if request_id:
        info.metadata["request_id"] = request_id
    detail = any_pb2.Any()
    detail.Pack(info)
    status.details.append(detail)
    if isinstance(exc, Overloaded):
        retry = error_details_pb2.RetryInfo()
        retry.retry_delay.FromMilliseconds(round(exc.retry_after * 1000))
        detail = any_pb2.Any()
        detail.Pack(retry)
        status.details.append(detail)
    violations = field_violations(exc)
    if violations:
        detail = any_pb2.Any()
        detail.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=f, description=d) for f, d in violations
                ]
            )
        )
        status.details.append(detail)
    return status


def clean_request_id(value: str | bytes) -> str:
    text = value if isinstance(value, str) else value.decode("ascii", "replace")
    return _CLEAN_ID.sub("", text)[:100]


def request_id_of(context) -> str:
    """The call's request id (the interceptor's), else the caller's x-request-id (cleaned,
    bounded), else a new one."""
    current = REQUEST_ID.get()
    if current:
        return current
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_HEADER:
            cleaned = clean_request_id(value)
            if cleaned:
                return cleaned
    return uuid.uuid4().hex


def fail(context, exc: ProxyvoteError, request_id: str = "") -> None:
    code = code_of(exc)
    if code == grpc.StatusCode.INTERNAL:
        fail_internal(context, exc, request_id)
        return
    status = status_of(exc, request_id)
    context.set_code(code)
    context.set_details(status.message)
    context.set_trailing_metadata(
        _kept_trailing_metadata(context) + (("grpc-status-details-bin", status.SerializeToString()),)
    )


def _kept_trailing_metadata(context) -> tuple:
    """What the call set already (setting trailing metadata replaces it): kept beside the status."""
    try:
        kept = context.trailing_metadata()
    except (AttributeError, NotImplementedError):  # grpc_testing's contexts
        return ()
    return tuple(item for item in kept or () if item[0] != "grpc-status-details-bin")


def fail_internal(context, exc: Exception, request_id: str) -> None:
    log.error("unexpected error (request %s): %s", request_id, exc, exc_info=exc)
    context.set_code(grpc.StatusCode.INTERNAL)
    context.set_details(f"internal error; it has been logged as request {request_id}")


def unary(response_type):
    """Wraps a unary servicer method: domain errors become their status, anything else INTERNAL."""

    def wrap(method):
        @functools.wraps(method)
        def handler(self, request, context):
            try:
                return method(self, request, context)
            except ProxyvoteError as exc:
                fail(context, exc, request_id_of(context))
            except Exception as exc:  # a bug of ours, not the caller's
                fail_internal(context, exc, request_id_of(context))
            return response_type()

        return handler

    return wrap
