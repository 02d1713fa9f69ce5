"""One benchmark server in its own process (so it does not share the client's GIL).

    python bench/rpc_servers.py MODE --workers N [--payload FILE]

MODE is one of:
  sync-real  proxyvote.api.server.create_server: the production server, every service,
             the decision log on (each Recommend is stored in a fresh SQLite file)
  sync-echo  grpc.server with the same thread pool and message limits and one generic
             handler on /proxyvote.v1.RecommendationService/Recommend that takes the
             request bytes undecoded and returns the bytes in FILE (a real response)
  aio-real   grpc.aio server; an async Recommend that authenticates, decides and stores
             (DecisionLog.recommend) inline
  aio-echo   grpc.aio server with the echo handler of sync-echo

Prints "PORT <n>" once serving on 127.0.0.1 and stops when stdin closes (or on
SIGTERM), so the parent cannot leave it running by accident.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import signal
import sys
import threading
from concurrent import futures

import grpc

METHOD_SERVICE = "proxyvote.v1.RecommendationService"
METHOD_NAME = "Recommend"
ADDR = "127.0.0.1:0"
TODAY = dt.date(2020, 5, 20)  # the requests carry as_of; this is only the fallback
OPTIONS = [
    ("grpc.max_receive_message_length", 32 * 1024 * 1024),
    ("grpc.max_send_message_length", 32 * 1024 * 1024),
]


def _announce(port: int, key: str = "-") -> None:
    print(f"PORT {port} KEY {key}", flush=True)


def _app():
    """The production service on a fresh SQLite database in a temporary folder, and a tenant's key."""
    import tempfile

    from proxyvote.app.wiring import build_app
    from proxyvote.settings import Settings
    from proxyvote.store.schema import upgrade

    url = f"sqlite:///{tempfile.mkdtemp(prefix='proxyvote-bench-')}/proxyvote.db"
    upgrade(url)
    app = build_app(Settings.load({}, database_url=url))
    _, key = app.store.tenants.create("bench")
    return app, key


def _wait_for_stdin_close() -> None:
    sys.stdin.read()


def _echo_handlers(payload: bytes):
    def recommend(request: bytes, context) -> bytes:
        return payload

    return grpc.method_handlers_generic_handler(
        METHOD_SERVICE,
        {METHOD_NAME: grpc.unary_unary_rpc_method_handler(recommend)},  # no (de)serializers: raw bytes
    )


def _aio_echo_handlers(payload: bytes):
    async def recommend(request: bytes, context) -> bytes:
        return payload

    return grpc.method_handlers_generic_handler(
        METHOD_SERVICE, {METHOD_NAME: grpc.unary_unary_rpc_method_handler(recommend)}
    )


def run_sync(mode: str, workers: int, payload: bytes) -> None:
    key = "-"
    if mode == "sync-real":
        from proxyvote.api.server import create_server

        app, key = _app()
        server = create_server(ADDR, app, max_workers=workers, today=lambda: TODAY)
        server.start()
        _announce(server.port, key)
        _wait_for_stdin_close()
        server.stop(0)
        app.close()
        return
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers), options=OPTIONS)
    server.add_generic_rpc_handlers((_echo_handlers(payload),))
    port = server.add_insecure_port(ADDR)
    server.start()
    _announce(port, key)
    _wait_for_stdin_close()
    server.stop(0).wait()


class AioRecommendationServicer:
    """The smallest asyncio adapter: the sync server's work (authenticate, decide, store)
    called inline in the event loop.

    Error mapping (grpc_errors.unary) is left out: the benchmark's requests are valid.
    """

    def __init__(self, app):
        from proxyvote.api.auth import Authenticator
        from proxyvote.wire.convert import recommend_command

        self._app = app
        self._auth = Authenticator(app.store.tenants.for_key)
        self._command = recommend_command

    async def Recommend(self, request, context):  # noqa: N802 (gRPC method name)
        tenant = self._auth.tenant(context)
        return self._app.log.recommend(tenant, self._command(request), TODAY).response


async def _serve_aio(mode: str, workers: int, payload: bytes) -> None:
    server = grpc.aio.server(migration_thread_pool=futures.ThreadPoolExecutor(workers), options=OPTIONS)
    key = "-"
    if mode == "aio-real":
        from proxyvote.v1 import recommendation_service_pb2 as rs

        app, key = _app()
        servicer = AioRecommendationServicer(app)
        handler = grpc.unary_unary_rpc_method_handler(
            servicer.Recommend,
            request_deserializer=rs.RecommendRequest.FromString,
            response_serializer=rs.RecommendResponse.SerializeToString,
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(METHOD_SERVICE, {METHOD_NAME: handler}),)
        )
    else:
        server.add_generic_rpc_handlers((_aio_echo_handlers(payload),))
    port = server.add_insecure_port(ADDR)
    await server.start()
    _announce(port, key)
    await asyncio.get_running_loop().run_in_executor(None, _wait_for_stdin_close)
    await server.stop(0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["sync-real", "sync-echo", "aio-real", "aio-echo"])
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--payload", help="file with the bytes the echo server returns")
    args = parser.parse_args()
    payload = b""
    if args.mode.endswith("echo"):
        with open(args.payload, "rb") as f:
            payload = f.read()
    # SIGTERM from the parent: exit at once (the parent only sends it if stdin EOF was not enough).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if args.mode.startswith("sync"):
        run_sync(args.mode, args.workers, payload)
    else:
        asyncio.run(_serve_aio(args.mode, args.workers, payload))


if __name__ == "__main__":
    threading.current_thread().name = "bench-server"
    main()
