"""Domain errors to gRPC status: the one place that decides codes and details.

Errors are written as code, message and a ``grpc-status-details-bin`` trailer
(google.rpc.Status with BadRequest field violations), the same bytes
``abort_with_status`` would send, without raising, so they work with
``grpc_testing`` servers as well as real ones.
"""

from __future__ import annotations

import functools
import logging

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from proxyvote.errors import (
    Aborted,
    AlreadyExists,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    PolicyInvalid,
    ProxyvoteError,
    Unauthenticated,
    Unavailable,
)

log = logging.getLogger(__name__)

_CODES = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    PolicyInvalid: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    Aborted: grpc.StatusCode.ABORTED,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
}


def code_of(exc: ProxyvoteError) -> grpc.StatusCode:
    for kind, code in _CODES.items():
        if isinstance(exc, kind):
            return code
    return grpc.StatusCode.INVALID_ARGUMENT


def field_violations(exc: ProxyvoteError) -> list[tuple[str, str]]:
    if isinstance(exc, InvalidArgument):
        return [(v.field, v.description) for v in exc.violations]
    if isinstance(exc, PolicyInvalid):
        return [(p.path or "source", f"line {p.line}, column {p.column}: {p.message}") for p in exc.problems]
    return []


def status_of(exc: ProxyvoteError) -> status_pb2.Status:
    code = code_of(exc)
    status = status_pb2.Status(code=code.value[0], message=str(exc)[:2000])
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


def _fail(context, exc: ProxyvoteError) -> None:
    status = status_of(exc)
    context.set_code(code_of(exc))
    context.set_details(status.message)
    context.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),))


def _fail_internal(context, exc: Exception) -> None:
    log.exception("unexpected error: %s", exc)
    context.set_code(grpc.StatusCode.INTERNAL)
    context.set_details("internal error; it has been logged")


def unary(response_type):
    """Wraps a unary servicer method: domain errors become their status."""

    def wrap(method):
        @functools.wraps(method)
        def handler(self, request, context):
            try:
                return method(self, request, context)
            except ProxyvoteError as exc:
                _fail(context, exc)
            except Exception as exc:  # a bug of ours, not the caller's
                _fail_internal(context, exc)
            return response_type()

        return handler

    return wrap
