"""Every method the server's reflection lists is served: none answers UNIMPLEMENTED."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from proxyvote.api.server import create_server
from proxyvote.app.wiring import build_app
from proxyvote.settings import Settings
from proxyvote.store.schema import upgrade

pytestmark = pytest.mark.e2e


@pytest.fixture
def served(tmp_path):
    url = f"sqlite:///{tmp_path / 'proxyvote.db'}"
    upgrade(url)
    app = build_app(Settings.load({}, database_url=url))
    _, key = app.store.tenants.create("reflection")
    server = create_server("127.0.0.1:0", app, today=lambda: dt.date(2026, 11, 23))
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield channel, key
    finally:
        server.stop(None)
        app.close()


def listed_methods(channel):
    """(service, method descriptor) for every method of every service reflection lists."""
    database = ProtoReflectionDescriptorDatabase(channel)
    pool = descriptor_pool.DescriptorPool(database)
    for name in database.get_services():
        if name.startswith("grpc.reflection."):
            continue  # reflection itself is a stream this test is using
        service = pool.FindServiceByName(name)
        for method in service.methods:
            yield service, method


def call_with_an_empty_request(channel, service, method, key) -> grpc.StatusCode:
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    path = f"/{service.full_name}/{method.name}"
    metadata = (("authorization", f"Bearer {key}"),)
    kwargs = dict(
        request_serializer=request_class.SerializeToString, response_deserializer=response_class.FromString
    )
    try:
        if method.client_streaming and method.server_streaming:
            call = channel.stream_stream(path, **kwargs)
            list(call(iter([request_class()]), metadata=metadata, timeout=30))
        elif method.server_streaming:
            # A watch streams until cancelled: its first answer is enough.
            call = channel.unary_stream(path, **kwargs)(request_class(), metadata=metadata, timeout=30)
            next(call, None)
            call.cancel()
        elif method.client_streaming:
            channel.stream_unary(path, **kwargs)(iter([request_class()]), metadata=metadata, timeout=30)
        else:
            channel.unary_unary(path, **kwargs)(request_class(), metadata=metadata, timeout=30)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def test_every_method_reflection_lists_is_implemented(served):
    channel, key = served
    answers = {
        f"{service.name}/{method.name}": call_with_an_empty_request(channel, service, method, key)
        for service, method in listed_methods(channel)
    }
    # The API's five services and health are listed, with every method.
    assert {"RecommendationService/Recommend", "EvidenceService/ImportEvidence", "Health/Check"} <= set(
        answers
    )
    assert len(answers) >= 20
    unimplemented = sorted(name for name, code in answers.items() if code == grpc.StatusCode.UNIMPLEMENTED)
    assert unimplemented == []
    # An empty request is a caller's mistake, never a crash of ours.
    assert not [
        name for name, code in answers.items() if code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)
    ]
