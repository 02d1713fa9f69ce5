"""Domain errors map to gRPC status in one place, each explicitly; the rest is INTERNAL with a request id."""

from __future__ import annotations

import inspect
import logging

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from proxyvote import errors
from proxyvote.api.grpc_errors import DOMAIN, MAPPING, status_of, unary
from proxyvote.errors import FieldViolation, InvalidArgument, NotFound, ProxyvoteError


class Context:
    """The parts of a servicer context the error mapping writes to."""

    def __init__(self, request_id: str = ""):
        self.metadata = (("x-request-id", request_id),) if request_id else ()
        self.code = self.details = self.trailers = None

    def invocation_metadata(self):
        return self.metadata

    def set_code(self, code):
        self.code = code

    def set_details(self, details):
        self.details = details

    def set_trailing_metadata(self, trailers):
        self.trailers = dict(trailers)


def details_of(context: Context):
    status = status_pb2.Status.FromString(context.trailers["grpc-status-details-bin"])
    info, bad = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    found = {d.type_url.rsplit(".", 1)[-1] for d in status.details}
    for detail in status.details:
        detail.Unpack(info) if detail.Is(info.DESCRIPTOR) else detail.Unpack(bad)
    return found, info, bad


def test_every_domain_error_is_mapped_by_name():
    domain_errors = {
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, ProxyvoteError) and cls is not ProxyvoteError
    }
    assert domain_errors - set(MAPPING) == set()


def test_a_bad_request_carries_error_info_and_its_field_violations():
    class Servicer:
        @unary(status_pb2.Status)
        def Call(self, request, context):  # noqa: N802
            raise InvalidArgument([FieldViolation("meeting.items[3].item_id", "duplicate item_id")])

    context = Context("req-42")
    Servicer().Call(None, context)
    assert context.code == grpc.StatusCode.INVALID_ARGUMENT
    found, info, bad = details_of(context)
    assert found == {"ErrorInfo", "BadRequest"}
    assert (info.reason, info.domain, info.metadata["request_id"]) == ("INVALID_ARGUMENT", DOMAIN, "req-42")
    assert [(v.field, v.description) for v in bad.field_violations] == [
        ("meeting.items[3].item_id", "duplicate item_id")
    ]


def test_not_found_has_its_own_reason_and_no_field_violations():
    status = status_of(NotFound("policy", "nope"))
    assert status.code == grpc.StatusCode.NOT_FOUND.value[0]
    info = error_details_pb2.ErrorInfo()
    assert [d.Unpack(info) for d in status.details] == [True]
    assert info.reason == "NOT_FOUND"


class Unforeseen(ProxyvoteError):
    """A domain error someone added without mapping it."""


@pytest.mark.parametrize("raised", [RuntimeError("boom"), Unforeseen("new")])
def test_an_error_nobody_mapped_is_internal_and_logged_with_the_request_id(raised, caplog):
    class Servicer:
        @unary(status_pb2.Status)
        def Call(self, request, context):  # noqa: N802
            raise raised

    context = Context("req-7")
    with caplog.at_level(logging.ERROR):
        Servicer().Call(None, context)
    assert context.code == grpc.StatusCode.INTERNAL
    assert "req-7" in context.details
    assert any("req-7" in record.getMessage() for record in caplog.records)
