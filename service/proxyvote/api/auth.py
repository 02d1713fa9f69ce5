"""Who is calling: API keys to tenants, and the interceptor that requires one.

Every RPC but health checking and reflection needs ``authorization: Bearer
<key>``. The interceptor turns callers away early; servicers ask the same
``Authenticator`` for the tenant (a cached lookup by then). A key not yet
cached is looked up on the thread that serves the call, never on gRPC's
dispatching thread, so a slow or unreachable database cannot stall other calls
(health included); a failed lookup answers with its own status (UNAVAILABLE
when the database is down, not UNAUTHENTICATED).
"""

from __future__ import annotations

import threading

import grpc

from proxyvote.api.grpc_errors import code_of, fail, request_id_of
from proxyvote.api.handlers import behaviour_of
from proxyvote.errors import ProxyvoteError, Unauthenticated

OPEN_METHOD_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
_MAX_CACHED = 10_000


class Authenticator:
    def __init__(self, tenant_for_key):
        self._tenant_for_key = tenant_for_key
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(metadata) -> str:
        header = ""
        for key, value in metadata or ():
            if key == "authorization":
                header = value if isinstance(value, str) else value.decode("ascii", "replace")
                break
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthenticated("send 'authorization: Bearer <API key>' (proxyvote tenant create NAME)")
        return key.strip()

    def cached_tenant(self, metadata) -> str | None:
        """The tenant if the key is known already, None if it must be looked up; Unauthenticated
        without a key. Never touches the database."""
        return self._cache.get(self._key(metadata))

    def tenant_for_metadata(self, metadata) -> str:
        """The tenant whose key the call carries; Unauthenticated otherwise."""
        key = self._key(metadata)
        tenant = self._cache.get(key)
        if tenant is None:
            tenant = self._tenant_for_key(key)
            if tenant is None:
                raise Unauthenticated("unknown API key")
            with self._lock:
                if len(self._cache) >= _MAX_CACHED:
                    self._cache.clear()
                self._cache[key] = tenant
        return tenant

    def tenant(self, context) -> str:
        return self.tenant_for_metadata(context.invocation_metadata())


class AuthInterceptor(grpc.ServerInterceptor):
    def __init__(self, authenticator: Authenticator):
        self._auth = authenticator

    def intercept_service(self, continuation, handler_call_details):
        if handler_call_details.method.startswith(OPEN_METHOD_PREFIXES):
            return continuation(handler_call_details)
        metadata = handler_call_details.invocation_metadata
        try:
            if self._auth.cached_tenant(metadata) is not None:
                return continuation(handler_call_details)
        except Unauthenticated as exc:
            return _deny(str(exc), continuation(handler_call_details))
        return _after_lookup(
            continuation(handler_call_details), lambda: self._auth.tenant_for_metadata(metadata)
        )


def _deny(message: str, handler):
    def abort(request_or_iterator, context):
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    return _aborting(abort, handler)


def _after_lookup(handler, lookup):
    """The method's handler, run once ``lookup()`` accepts the key, on the pool thread that serves
    the call; otherwise the call gets the lookup's error as its status (grpc_errors)."""
    if handler is None:
        return None
    behaviour, wrap = behaviour_of(handler)

    def check(context) -> None:
        try:
            lookup()
        except ProxyvoteError as exc:
            fail(context, exc, request_id_of(context))
            context.abort(code_of(exc), str(exc))

    if handler.response_streaming:

        def run(request, context):
            check(context)
            yield from behaviour(request, context)

    else:

        def run(request, context):
            check(context)
            return behaviour(request, context)

    return wrap(
        run,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _aborting(abort, handler):
    """``abort`` as a handler of the same shape as the method's own (None for an unknown method)."""
    if handler is None:
        return None
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(abort)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(abort)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(abort)
    return grpc.unary_unary_rpc_method_handler(abort)
