"""Shedding instead of queueing: past a number of calls in flight, a call is refused at once.

The interceptor counts a call from its arrival (when gRPC looks up its
handler, before it waits for a thread) to the end of its handler. Past
``limit`` calls, a new one gets RESOURCE_EXHAUSTED with a ``google.rpc.RetryInfo``
hint, from a handler that does no work. The server's thread pool is larger than
the limit, so admitted calls never wait for a thread and refusals never wait
behind them. Health checks and reflection are never shed.
"""

from __future__ import annotations

import threading
import weakref

import grpc

from proxyvote.api.auth import OPEN_METHOD_PREFIXES
from proxyvote.api.grpc_errors import fail
from proxyvote.api.handlers import behaviour_of
from proxyvote.errors import Overloaded

# Threads beyond the limit: room for refusals and for health checks under load.
SPARE_THREADS = 4


class InFlight:
    """The calls being served now, against a limit."""

    def __init__(self, limit: int):
        self.limit = limit
        self._count = 0
        self._lock = threading.Lock()

    def try_enter(self) -> bool:
        with self._lock:
            if self._count >= self.limit:
                return False
            self._count += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._count -= 1

    @property
    def count(self) -> int:
        return self._count


class OverloadInterceptor(grpc.ServerInterceptor):
    """``arity`` maps each method path to (client streaming, server streaming), so a
    refusal answers in the method's own shape without looking its handler up."""

    def __init__(self, in_flight: InFlight, retry_after: float, arity: dict[str, tuple[bool, bool]]):
        self.in_flight = in_flight
        self.retry_after = retry_after
        self.arity = arity

    def intercept_service(self, continuation, handler_call_details):
        if handler_call_details.method.startswith(OPEN_METHOD_PREFIXES):
            return continuation(handler_call_details)
        if not self.in_flight.try_enter():
            shape = self.arity.get(handler_call_details.method, (False, False))
            return _refusal(shape, self.in_flight.limit, self.retry_after)
        try:
            handler = continuation(handler_call_details)
        except BaseException:
            self.in_flight.leave()
            raise
        if handler is None:  # an unknown method: gRPC answers UNIMPLEMENTED itself
            self.in_flight.leave()
            return None
        return _counted(handler, self.in_flight)


class _Slot:
    """One admitted call's place in the count, left once."""

    def __init__(self, in_flight: InFlight):
        self._in_flight = in_flight
        self._held = True
        self._lock = threading.Lock()

    def leave(self) -> None:
        with self._lock:
            if not self._held:
                return
            self._held = False
        self._in_flight.leave()


def _counted(handler: grpc.RpcMethodHandler, in_flight: InFlight) -> grpc.RpcMethodHandler:
    """The same handler, leaving the count when its behaviour ends (a stream: when it is drained).

    gRPC may never run the behaviour: a request over the size limit, or one that
    does not arrive before a cancellation or the deadline, ends the call first. The
    place is then left when gRPC lets go of the behaviour (a finalizer), or it would
    be held for good: after ``limit`` such calls the server refused every call.
    """
    slot = _Slot(in_flight)
    behaviour, wrap = behaviour_of(handler)

    if handler.response_streaming:

        def run(request, context):
            try:
                yield from behaviour(request, context)
            finally:
                slot.leave()

    else:

        def run(request, context):
            try:
                return behaviour(request, context)
            finally:
                slot.leave()

    weakref.finalize(run, slot.leave)
    return wrap(
        run,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _refusal(shape: tuple[bool, bool], limit: int, retry_after: float) -> grpc.RpcMethodHandler:
    """A handler of the method's shape that answers RESOURCE_EXHAUSTED; the request is not decoded."""
    error = Overloaded(f"more than {limit} calls in flight on this server; retry shortly", retry_after)

    def refuse(request, context):
        fail(context, error)
        return None

    def refuse_stream(request, context):
        fail(context, error)
        return iter(())

    client_streaming, server_streaming = shape
    wrap = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }[(client_streaming, server_streaming)]
    return wrap(refuse_stream if server_streaming else refuse)


def method_arity(descriptors) -> dict[str, tuple[bool, bool]]:
    """Method path -> (client streaming, server streaming), from service descriptors."""
    return {
        f"/{service.full_name}/{method.name}": (method.client_streaming, method.server_streaming)
        for service in descriptors
        for method in service.methods
    }
