"""BacktestService: run a backtest over the stored past meetings (streaming progress), read a run."""

from __future__ import annotations

import queue
import threading

from proxyvote.api.auth import Authenticator
from proxyvote.api.grpc_errors import fail, fail_internal, request_id_of, unary
from proxyvote.app.backtest import Backtests, Selection, canonical_json
from proxyvote.core.backtest import DEFAULT_LEAD_DAYS
from proxyvote.errors import FieldViolation, InvalidArgument, ProxyvoteError
from proxyvote.store import canonical_time
from proxyvote.v1 import backtest_service_pb2 as bs
from proxyvote.v1 import backtest_service_pb2_grpc as bs_grpc
from proxyvote.wire import convert

_NAME = "backtests/"
MAX_POLICIES = 50


class BacktestServicer(bs_grpc.BacktestServiceServicer):
    def __init__(self, backtests: Backtests, auth: Authenticator):
        self._backtests = backtests
        self._auth = auth

    def RunBacktest(self, request, context):
        request_id = request_id_of(context)
        try:
            tenant = self._auth.tenant(context)
            references, selection, lead_days = _arguments(request)
        except ProxyvoteError as exc:
            fail(context, exc, request_id)
            return
        events: queue.Queue = queue.Queue()
        outcome: dict = {}

        def work() -> None:
            try:
                outcome["stored"] = self._backtests.run(
                    tenant, references, selection, lead_days, lambda done, total: events.put((done, total))
                )[0]
            except BaseException as exc:  # handed to the caller's thread below
                outcome["error"] = exc
            finally:
                events.put(None)

        threading.Thread(target=work, name=f"backtest-{request_id}", daemon=True).start()
        last = None
        while True:
            event = events.get()
            if event is None:
                break
            if event != last and context.is_active():
                last = event
                yield bs.RunBacktestResponse(
                    progress=bs.BacktestProgress(meetings_done=event[0], meetings_total=event[1])
                )
        error = outcome.get("error")
        if isinstance(error, ProxyvoteError):
            fail(context, error, request_id)
            return
        if error is not None:
            fail_internal(context, error, request_id)
            return
        yield bs.RunBacktestResponse(summary=backtest_message(outcome["stored"]))

    @unary(bs.GetBacktestResponse)
    def GetBacktest(self, request, context):
        tenant = self._auth.tenant(context)
        backtest_id = request.name.strip()
        if backtest_id.startswith(_NAME):
            backtest_id = backtest_id[len(_NAME) :]
        if not backtest_id:
            raise InvalidArgument([FieldViolation("name", "is required: backtests/{backtest_id}")])
        return bs.GetBacktestResponse(backtest=backtest_message(self._backtests.get(tenant, backtest_id)))


def _arguments(request) -> tuple[list[str], Selection, int]:
    violations = []
    references = [p.strip() for p in request.policies]
    if not references or not all(references):
        violations.append(FieldViolation("policies", "name one or more policies (id or id@version)"))
    elif len(references) > MAX_POLICIES:  # each one is a pass over every selected meeting
        violations.append(FieldViolation("policies", f"names more than {MAX_POLICIES} policies"))
    lead_days = request.lead_days if request.HasField("lead_days") else DEFAULT_LEAD_DAYS
    if not 0 <= lead_days <= 366:
        violations.append(FieldViolation("lead_days", "must be between 0 and 366"))
    dates = []
    for name in ("date_from", "date_to"):
        try:
            dates.append(convert.parse_as_of(getattr(request, name), name))
        except InvalidArgument as exc:
            violations.extend(exc.violations)
            dates.append(None)
    if violations:
        raise InvalidArgument(violations)
    return references, Selection(dates[0], dates[1], request.issuer.strip()), lead_days


def backtest_message(stored) -> bs.Backtest:
    figures = stored.figures
    return bs.Backtest(
        name=_NAME + stored.backtest_id,
        backtest_id=stored.backtest_id,
        meetings=stored.meetings,
        items=stored.items,
        policies=[_policy_figures(p) for p in figures.get("policies", [])],
        flips=len(figures.get("flips", [])),
        inputs_json=canonical_json(stored.inputs),
        figures_json=canonical_json(figures),
        figures_hash=stored.figures_hash,
        create_time=canonical_time(stored.created_at),
    )


def _agreements(named: dict) -> list[bs.Agreement]:
    return [
        bs.Agreement(party=name, agree=a["agree"], disagree=a["disagree"], referred=a["referred"])
        for name, a in sorted(named.items())
    ]


def _policy_figures(p: dict) -> bs.PolicyFigures:
    outcome = p["agreement_with_outcome"]
    proposals = p["shareholder_proposals"]["all"]
    return bs.PolicyFigures(
        policy=p["policy"],
        versions_used=sorted(p["versions_used"]),
        items=p["items"],
        against_management=p["against_management"]["count"],
        decided_with_board_recommendation=p["against_management"]["decided_with_board_recommendation"],
        refer=p["refer"]["count"],
        shareholder_proposals=proposals["items"],
        shareholder_proposals_supported=proposals["for"],
        outcome=bs.Agreement(
            party="outcome",
            agree=outcome["agree"],
            disagree=outcome["disagree"],
            referred=outcome["referred"],
        ),
        advisers=_agreements(p["agreement_with_advisers"]),
        investors=_agreements(p["agreement_with_investors"]),
    )
