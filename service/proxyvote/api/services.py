"""The one list of the services this server offers: servicer, descriptor, health name.

The server registers them from here, health reports on each, reflection lists
them, and the tests build their servicers from the same list, so none can be
registered in one place and forgotten in another.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.descriptor import ServiceDescriptor

from proxyvote.api.auth import Authenticator
from proxyvote.api.backtest_servicer import BacktestServicer
from proxyvote.api.meeting_servicer import MeetingServicer
from proxyvote.api.servicers import (
    DecisionServicer,
    EvidenceServicer,
    MemoServicer,
    PolicyServicer,
    RecommendationServicer,
    utc_today,
)
from proxyvote.api.voting_choice_servicer import VotingChoiceServicer
from proxyvote.app.accounts import Programmes
from proxyvote.app.backtest import Backtests
from proxyvote.app.meeting_import import MeetingImporter
from proxyvote.app.vote_plans import VotePlans
from proxyvote.app.wiring import App
from proxyvote.v1 import (
    backtest_service_pb2,
    backtest_service_pb2_grpc,
    decision_service_pb2,
    decision_service_pb2_grpc,
    evidence_service_pb2,
    evidence_service_pb2_grpc,
    meeting_service_pb2,
    meeting_service_pb2_grpc,
    memo_service_pb2,
    memo_service_pb2_grpc,
    policy_service_pb2,
    policy_service_pb2_grpc,
    recommendation_service_pb2,
    recommendation_service_pb2_grpc,
    voting_choice_service_pb2,
    voting_choice_service_pb2_grpc,
)


@dataclass(frozen=True)
class Service:
    descriptor: ServiceDescriptor
    servicer: object
    register: Callable[[object, object], None]  # add_XServicer_to_server(servicer, server)

    @property
    def name(self) -> str:
        """The full name: what health checks and reflection use."""
        return self.descriptor.full_name


def services(app: App, auth: Authenticator, today: Callable[[], dt.date] = utc_today) -> tuple[Service, ...]:
    log = app.log
    return (
        Service(
            recommendation_service_pb2.DESCRIPTOR.services_by_name["RecommendationService"],
            RecommendationServicer(log, auth, today),
            recommendation_service_pb2_grpc.add_RecommendationServiceServicer_to_server,
        ),
        Service(
            policy_service_pb2.DESCRIPTOR.services_by_name["PolicyService"],
            PolicyServicer(app.catalog, auth),
            policy_service_pb2_grpc.add_PolicyServiceServicer_to_server,
        ),
        Service(
            memo_service_pb2.DESCRIPTOR.services_by_name["MemoService"],
            MemoServicer(log, app.memos, app.store.templates, auth, today),
            memo_service_pb2_grpc.add_MemoServiceServicer_to_server,
        ),
        Service(
            decision_service_pb2.DESCRIPTOR.services_by_name["DecisionService"],
            DecisionServicer(log, auth),
            decision_service_pb2_grpc.add_DecisionServiceServicer_to_server,
        ),
        Service(
            evidence_service_pb2.DESCRIPTOR.services_by_name["EvidenceService"],
            EvidenceServicer(app.evidence, auth, today),
            evidence_service_pb2_grpc.add_EvidenceServiceServicer_to_server,
        ),
        Service(
            meeting_service_pb2.DESCRIPTOR.services_by_name["MeetingService"],
            MeetingServicer(MeetingImporter(app.store.meetings), auth),
            meeting_service_pb2_grpc.add_MeetingServiceServicer_to_server,
        ),
        Service(
            backtest_service_pb2.DESCRIPTOR.services_by_name["BacktestService"],
            BacktestServicer(Backtests.from_app(app), auth),
            backtest_service_pb2_grpc.add_BacktestServiceServicer_to_server,
        ),
        Service(
            voting_choice_service_pb2.DESCRIPTOR.services_by_name["VotingChoiceService"],
            VotingChoiceServicer(Programmes.from_app(app), VotePlans.from_app(app), auth, today),
            voting_choice_service_pb2_grpc.add_VotingChoiceServiceServicer_to_server,
        ),
    )
