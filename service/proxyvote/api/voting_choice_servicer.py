"""VotingChoiceService: the caller's programmes, accounts, vote plans and their exports.

Everything is the authenticated tenant's own: programmes, accounts and plans are stored
under it, and another tenant's are NOT_FOUND. Thin: each request converted once
(``wire.voting_choice``), the application (``app.accounts.Programmes``,
``app.vote_plans.VotePlans``) called, the answer converted back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from proxyvote.api.auth import Authenticator
from proxyvote.api.grpc_errors import fail, fail_internal, request_id_of, unary
from proxyvote.api.servicers import deadline_of, utc_today
from proxyvote.app.accounts import Programmes
from proxyvote.app.vote_plans import VotePlans
from proxyvote.core.paging import encode_offset, page_bounds
from proxyvote.errors import FieldViolation, InvalidArgument, NotFound, ProxyvoteError
from proxyvote.v1 import voting_choice_service_pb2 as vc
from proxyvote.v1 import voting_choice_service_pb2_grpc as vc_grpc
from proxyvote.wire import seev
from proxyvote.wire import voting_choice as wire
from proxyvote.wire.npx_out import ReportingPeriod, vote_table

MAX_ACCOUNT_PAGE = 10_000
FORMATS = {
    vc.ACCOUNTS_FORMAT_UNSPECIFIED: None,
    vc.ACCOUNTS_FORMAT_CSV: False,
    vc.ACCOUNTS_FORMAT_PARQUET: True,
}
FIRST_YEAR, LAST_YEAR = 1901, 9999  # N-PX periods: a year whose 1 July of the year before is a date


class VotingChoiceServicer(vc_grpc.VotingChoiceServiceServicer):
    def __init__(
        self,
        programmes: Programmes,
        vote_plans: VotePlans,
        auth: Authenticator,
        today: Callable[[], dt.date] = utc_today,
    ):
        self._programmes = programmes
        self._plans = vote_plans
        self._auth = auth
        self._today = today

    @unary(vc.DefineProgrammeResponse)
    def DefineProgramme(self, request, context):
        tenant = self._auth.tenant(context)
        name, policies, default, description = wire.define_programme_args(request)
        try:
            stored, outcome = self._programmes.define(tenant, name, policies, default, description)
        except InvalidArgument as exc:
            raise wire.renamed_for_request(exc) from exc
        return vc.DefineProgrammeResponse(
            programme=wire.programme_to_proto(stored.programme, stored.version, stored.created_at),
            outcome=outcome,
        )

    @unary(vc.ImportAccountsResponse)
    def ImportAccounts(self, request, context):
        tenant = self._auth.tenant(context)
        violations: list[FieldViolation] = []
        programme = wire.required_name(violations, "programme", request.programme)
        name = wire.required_name(violations, "file_name", request.file_name)
        if request.format not in FORMATS:
            violations.append(FieldViolation("format", f"{request.format} is not an AccountsFormat"))
        if violations:
            raise InvalidArgument(violations)
        report = self._programmes.import_accounts(
            tenant, programme, name, request.content, FORMATS[request.format]
        )
        s = report.summary
        return vc.ImportAccountsResponse(
            file_name=report.name,
            programme=report.programme,
            rows=report.rows,
            accounts_added=s.accounts_added,
            accounts_changed=s.accounts_changed,
            accounts_unchanged=s.accounts_unchanged,
            choices_added=s.choices_added,
            holdings_added=s.holdings_added,
        )

    @unary(vc.PlanVotesResponse)
    def PlanVotes(self, request, context):
        tenant = self._auth.tenant(context)
        meeting, ref, programme, as_of = wire.plan_votes_args(request)
        if meeting is None:
            meeting = self._plans.find_meeting(tenant, ref)
        stored = self._plans.make(tenant, meeting, programme, self._today(), as_of, deadline_of(context))
        return vc.PlanVotesResponse(plan=wire.outline_to_proto(stored.outline(wire.NOT_OFFERED_SHOWN)))

    @unary(vc.GetPlanResponse)
    def GetPlan(self, request, context):
        tenant = self._auth.tenant(context)
        violations: list[FieldViolation] = []
        plan_id = wire.required_name(violations, "plan_id", request.plan_id)
        if not 0 <= request.account_page_size <= MAX_ACCOUNT_PAGE:
            violations.append(FieldViolation("account_page_size", f"must be 0 to {MAX_ACCOUNT_PAGE}"))
        if violations:
            raise InvalidArgument(violations)
        stored = self._plans.get(tenant, plan_id)
        response = vc.GetPlanResponse(plan=wire.outline_to_proto(stored.outline(wire.NOT_OFFERED_SHOWN)))
        if request.account_page_size or request.account_page_token:
            start, size = page_bounds(
                request.account_page_size or MAX_ACCOUNT_PAGE, request.account_page_token
            )
            page = stored.plan.accounts[start : start + size]
            response.accounts.extend(wire.position_to_proto(p) for p in page)
            end = start + len(page)
            if end < len(stored.plan.accounts):
                response.next_account_page_token = encode_offset(end)
        return response

    @unary(vc.ReplayPlanResponse)
    def ReplayPlan(self, request, context):
        tenant = self._auth.tenant(context)
        violations: list[FieldViolation] = []
        plan_id = wire.required_name(violations, "plan_id", request.plan_id)
        if violations:
            raise InvalidArgument(violations)
        return wire.replay_to_proto(plan_id, self._plans.replay(tenant, plan_id))

    def ExportSeev004(self, request, context):
        request_id = request_id_of(context)
        try:
            tenant = self._auth.tenant(context)
            stored = self._plan_to_export(tenant, request)
            batch = seev.meeting_instructions(stored.meeting, stored.plan, stored.plan_id)
        except ProxyvoteError as exc:
            fail(context, exc, request_id)
            return
        except Exception as exc:  # a bug of ours, not the caller's
            fail_internal(context, exc, request_id)
            return
        for message in wire.seev004_messages(batch, stored.plan_id, stored.meeting.meeting_id):
            if not context.is_active():
                return  # the caller cancelled or went away
            yield message

    def _plan_to_export(self, tenant: str, request):
        violations: list[FieldViolation] = []
        if request.plan_id.strip():
            if request.meeting_id.strip() or request.programme.strip():
                violations.append(
                    FieldViolation("plan_id", "give plan_id alone, or meeting_id with programme")
                )
            plan_id = wire.required_name(violations, "plan_id", request.plan_id)
            if violations:
                raise InvalidArgument(violations)
            return self._plans.get(tenant, plan_id)
        if not request.meeting_id.strip() and not request.programme.strip():
            raise InvalidArgument([FieldViolation("plan_id", "give plan_id, or meeting_id with programme")])
        meeting_id = wire.required_name(violations, "meeting_id", request.meeting_id)
        programme = wire.required_name(violations, "programme", request.programme)
        if violations:
            raise InvalidArgument(violations)
        self._programmes.repository.get(tenant, programme)  # NotFound for an unknown programme
        found = self._plans.latest(tenant, programme, meeting_id=meeting_id)
        if not found:
            raise NotFound("vote plan", f"of meeting {meeting_id} under programme {programme}")
        return found[-1]

    @unary(vc.ExportNpxResponse)
    def ExportNpx(self, request, context):
        tenant = self._auth.tenant(context)
        violations: list[FieldViolation] = []
        programme = wire.required_name(violations, "programme", request.programme)
        if not FIRST_YEAR <= request.period_year <= LAST_YEAR:
            violations.append(
                FieldViolation("period_year", f"must be a year from {FIRST_YEAR} to {LAST_YEAR}")
            )
        if len(request.series) > wire.MAX_NAME:
            violations.append(FieldViolation("series", f"is longer than {wire.MAX_NAME} characters"))
        if violations:
            raise InvalidArgument(violations)
        period = ReportingPeriod(request.period_year)
        self._programmes.repository.get(tenant, programme)  # NotFound for an unknown programme
        plans = self._plans.latest(tenant, programme, period.start, period.end, accounts=False)
        if not plans:
            raise NotFound("vote plan", f"of programme {programme} from {period.start} to {period.end}")
        table = vote_table(period, [(p.meeting, p.plan) for p in plans], series=request.series.strip())
        return wire.npx_to_proto(table, period, len(plans))

    @unary(vc.ListProgrammesResponse)
    def ListProgrammes(self, request, context):
        tenant = self._auth.tenant(context)
        start, size = page_bounds(request.page_size, request.page_token)
        programmes = self._programmes.list(tenant)
        page = programmes[start : start + size]
        end = start + len(page)
        return vc.ListProgrammesResponse(
            programmes=[wire.programme_to_proto(p.programme, p.version, p.created_at) for p in page],
            next_page_token=encode_offset(end) if end < len(programmes) else "",
            total_size=len(programmes),
        )

    @unary(vc.ListPlansResponse)
    def ListPlans(self, request, context):
        tenant = self._auth.tenant(context)
        violations: list[FieldViolation] = []
        try:
            programme, date_from, date_to, meeting_id = wire.list_plans_args(request)
        except InvalidArgument as exc:
            violations.extend(exc.violations)
        try:
            start, size = page_bounds(request.page_size, request.page_token)
        except InvalidArgument as exc:
            violations.extend(exc.violations)
        if violations:
            raise InvalidArgument(violations)
        plans = self._plans.list(tenant, programme, date_from, date_to, meeting_id)
        page = plans[start : start + size]
        end = start + len(page)
        return vc.ListPlansResponse(
            plans=[wire.plan_summary_to_proto(p) for p in page],
            next_page_token=encode_offset(end) if end < len(plans) else "",
            total_size=len(plans),
        )
