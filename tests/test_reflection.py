"""Every method the server's reflection lists is served: none answers UNIMPLEMENTED."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

pytestmark = pytest.mark.e2e


@pytest.fixture
def served(running_server):
    with grpc.insecure_channel(running_server.address) as channel:
        yield channel, running_server.key


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


def bad_request_fields(trailing) -> list[tuple[str, str]]:
    from google.rpc import error_details_pb2, status_pb2

    for key, value in trailing or ():
        if key == "grpc-status-details-bin":
            for detail in status_pb2.Status.FromString(value).details:
                bad = error_details_pb2.BadRequest()
                if detail.Unpack(bad):
                    return [(v.field, v.description) for v in bad.field_violations]
    return []


def test_bytes_that_do_not_parse_are_invalid_argument_on_every_method(served):
    """gRPC itself answers undecodable bytes with INTERNAL; the server names the field instead."""
    channel, key = served
    metadata = (("authorization", f"Bearer {key}"),)
    answers = {}
    for service, method in listed_methods(channel):
        path = f"/{service.full_name}/{method.name}"
        corrupt = b"\xff" * 8  # a tag cut short
        try:
            if method.client_streaming:
                call = channel.stream_stream if method.server_streaming else channel.stream_unary
                result = call(path)(iter([corrupt]), metadata=metadata, timeout=30)
                list(result) if method.server_streaming else None
            elif method.server_streaming:
                list(channel.unary_stream(path)(corrupt, metadata=metadata, timeout=30))
            else:
                channel.unary_unary(path)(corrupt, metadata=metadata, timeout=30)
            answers[path] = (grpc.StatusCode.OK, [])
        except grpc.RpcError as exc:
            answers[path] = (exc.code(), bad_request_fields(exc.trailing_metadata()))
    assert {p: a[0] for p, a in answers.items() if a[0] != grpc.StatusCode.INVALID_ARGUMENT} == {}
    assert all(fields and all(f for f, _ in fields) for _, fields in answers.values())


def test_a_string_that_is_not_utf8_is_named(served):
    from proxyvote.v1 import meeting_pb2, recommendation_service_pb2

    channel, key = served
    request = recommendation_service_pb2.RecommendRequest(
        meeting=meeting_pb2.Meeting(
            items=[meeting_pb2.BallotItem(title="ok"), meeting_pb2.BallotItem(title="XY")]
        ),
        policy="human-rights-esg",
    )
    data = request.SerializeToString().replace(b"XY", b"\xc3\x28")  # not UTF-8
    with pytest.raises(grpc.RpcError) as raised:
        channel.unary_unary("/proxyvote.v1.RecommendationService/Recommend")(
            data, metadata=(("authorization", f"Bearer {key}"),), timeout=30
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_fields(raised.value.trailing_metadata()) == [
        ("meeting.items[1].title", "is not valid UTF-8")
    ]
    # Without a key, the caller learns that first.
    with pytest.raises(grpc.RpcError) as raised:
        channel.unary_unary("/proxyvote.v1.RecommendationService/Recommend")(data, timeout=30)
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_string_holding_nul_is_refused_naming_the_field(served):
    # Found by tests/test_fuzz.py on PostgreSQL, which stores and compares no NUL: DataError, INTERNAL.
    from proxyvote.v1 import decision_service_pb2, memo_service_pb2

    channel, key = served
    metadata = (("authorization", f"Bearer {key}"),)
    for path, request, field in (
        (
            "/proxyvote.v1.DecisionService/GetDecision",
            decision_service_pb2.GetDecisionRequest(decision_id="d\x00"),
            "decision_id",
        ),
        (
            "/proxyvote.v1.MemoService/UploadMemoTemplate",
            memo_service_pb2.UploadMemoTemplateRequest(name="t", source="<p>\x00</p>"),
            "source",
        ),
    ):
        with pytest.raises(grpc.RpcError) as raised:
            channel.unary_unary(path)(request.SerializeToString(), metadata=metadata, timeout=30)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert bad_request_fields(raised.value.trailing_metadata()) == [
            (field, "must not contain NUL (U+0000) characters")
        ]
