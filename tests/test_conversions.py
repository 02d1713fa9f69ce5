"""A Recommend converts at the edge once: the meeting into the domain once, serialised once, to store it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from unittest import mock

from google.protobuf import json_format
from proxyvote.api.auth import Authenticator
from proxyvote.api.services import services
from proxyvote.app.wiring import build_app
from proxyvote.settings import Settings
from proxyvote.store.schema import upgrade
from proxyvote.v1 import meeting_pb2
from proxyvote.v1 import recommendation_service_pb2 as rs
from proxyvote.wire import convert

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


class Context:
    """Just enough of a grpc.ServicerContext for a direct call."""

    def __init__(self, key: str):
        self._metadata = (("authorization", f"Bearer {key}"),)

    def invocation_metadata(self):
        return self._metadata

    def time_remaining(self):
        return None  # no deadline


def test_a_recommend_converts_the_meeting_once_each_way_and_stores_the_request_it_was_sent(tmp_path):
    url = f"sqlite:///{tmp_path / 'proxyvote.db'}"
    upgrade(url)
    app = build_app(Settings.load({}, database_url=url))
    try:
        _, key = app.store.tenants.create("conversions")
        recommendation = services(
            app, Authenticator(app.store.tenants.for_key), lambda: dt.date(2026, 11, 23)
        )[0]
        meeting = json_format.Parse(
            (EXAMPLES / "meetings" / "amazon-2020-agm.json").read_text(), meeting_pb2.Meeting()
        )
        request = rs.RecommendRequest(
            meeting=meeting, policy="human-rights-esg", as_of="2020-05-20", request_id="r1"
        )
        counted = {
            name: mock.patch.object(convert, name, wraps=getattr(convert, name))
            for name in (
                "_meeting",  # protobuf -> domain
                "meeting_to_proto",  # domain -> protobuf, serialised for the store
                "decision_to_proto",
                "request_bytes",
            )
        }
        spies = {name: patcher.start() for name, patcher in counted.items()}
        try:
            response = recommendation.servicer.Recommend(request, Context(key))
        finally:
            mock.patch.stopall()
        assert {name: spy.call_count for name, spy in spies.items()} == {
            "_meeting": 1,
            "meeting_to_proto": 1,
            "decision_to_proto": 1,
            "request_bytes": 1,
        }
        stored, _ = app.log.get(app.store.tenants.for_key(key), response.decision_id)
        # The stored request is byte for byte what serialising the evaluated request whole gives.
        evaluated = rs.RecommendRequest.FromString(stored.request)
        assert evaluated.SerializeToString(deterministic=True) == stored.request
        assert evaluated.meeting.meeting_id == meeting.meeting_id and evaluated.as_of == "2020-05-20"
        assert convert.meeting_from_proto(evaluated.meeting) == convert.meeting_from_proto(meeting)
    finally:
        app.close()
