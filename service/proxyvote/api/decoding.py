"""Requests whose bytes do not parse: INVALID_ARGUMENT naming the field, not INTERNAL.

gRPC decodes a request before any servicer runs, and answers bytes that do not
parse (a corrupt wire format, a string that is not UTF-8) with INTERNAL
"Exception deserializing request!". That is the caller's mistake, not ours.
This interceptor wraps every method's deserializer: such bytes become an
``Undecodable`` value, which the method answers with INVALID_ARGUMENT and a
BadRequest naming the field (``wire.undecodable.locate``), for one request or
any message of a stream. So does a string holding NUL (U+0000), which parses
but which PostgreSQL can neither store nor compare.
"""

from __future__ import annotations

import grpc
from google.protobuf.message import DecodeError

from proxyvote.api.grpc_errors import fail, request_id_of
from proxyvote.errors import FieldViolation, InvalidArgument
from proxyvote.wire.undecodable import WHOLE, locate, nul_field


class Undecodable:
    """What the wrapped deserializer gives for bytes that do not parse."""

    __slots__ = ("field", "description")

    def __init__(self, field: str, description: str):
        self.field = field
        self.description = description


def _safe(deserialize):
    message_class = getattr(deserialize, "__self__", None)
    descriptor = getattr(message_class, "DESCRIPTOR", None)

    def decode(data: bytes):
        try:
            message = deserialize(data)
        except (DecodeError, ValueError, TypeError):
            if descriptor is None:
                return Undecodable(WHOLE, "does not parse")
            return Undecodable(*locate(descriptor, data))
        # A NUL character is valid protobuf but no text PostgreSQL can store or compare: refused here,
        # for every field of every method (a zero byte is rare in a request, so this is seldom a walk).
        if b"\x00" in data and hasattr(message, "ListFields"):
            field = nul_field(message)
            if field is not None:
                return Undecodable(field, "must not contain NUL (U+0000) characters")
        return message

    return decode


def _reject(context, bad: Undecodable) -> None:
    exc = InvalidArgument([FieldViolation(bad.field, bad.description)])
    fail(context, exc, request_id_of(context))
    context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc)[:2000])


def _checked(requests, context):
    for request in requests:
        if isinstance(request, Undecodable):
            _reject(context, request)
        yield request


def _unary_in(behavior):
    def handle(request, context):
        if isinstance(request, Undecodable):
            _reject(context, request)
        return behavior(request, context)

    return handle


def _stream_in(behavior):
    def handle(requests, context):
        return behavior(_checked(requests, context), context)

    return handle


class DecodingInterceptor(grpc.ServerInterceptor):
    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.request_deserializer is None:
            return handler
        decode = _safe(handler.request_deserializer)
        serialize = handler.response_serializer
        if handler.request_streaming and handler.response_streaming:
            return grpc.stream_stream_rpc_method_handler(_stream_in(handler.stream_stream), decode, serialize)
        if handler.request_streaming:
            return grpc.stream_unary_rpc_method_handler(_stream_in(handler.stream_unary), decode, serialize)
        if handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(_unary_in(handler.unary_stream), decode, serialize)
        return grpc.unary_unary_rpc_method_handler(_unary_in(handler.unary_unary), decode, serialize)
