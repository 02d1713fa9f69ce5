"""Voting choice: VotingChoiceService messages <-> domain values (programmes, plans, exports).

Share counts cross as exact decimal strings (``core.vote_plan.shares_text``: no exponent,
no trailing zeros), never floats, so ``Decimal(text)`` gives back the very value.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from proxyvote.core.model import Meeting
from proxyvote.core.vote_plan import (
    AccountPosition,
    ItemTotals,
    PlanOutline,
    PolicyShare,
    Programme,
    VotePlan,
    shares_text,
)
from proxyvote.errors import FieldViolation, InvalidArgument
from proxyvote.v1 import voting_choice_service_pb2 as vc
from proxyvote.wire.convert import (
    NPX_NAMES,
    NPX_VALUES,
    VOTE_NAMES,
    VOTE_VALUES,
    meeting_from_proto,
    parse_as_of,
)

MAX_NAME = 200
NOT_OFFERED_SHOWN = 1000  # accounts listed in a VotePlan message; not_offered_count counts all
# Programmes.define names the command line's flags; the request names its fields.
DEFINE_FIELDS = {"policy": "policies", "default": "default_policy"}


def shares_value(text: str, field: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidArgument([FieldViolation(field, f"{text!r} is not a decimal number")]) from None
    if not value.is_finite():
        raise InvalidArgument([FieldViolation(field, f"{text!r} is not a finite number")])
    return value


def _date(value: dt.date | None) -> str:
    return value.isoformat() if value else ""


def _time(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"


def required_name(violations: list[FieldViolation], field: str, text: str) -> str:
    """A name or id the request must give (1 to 200 characters), stripped."""
    value = text.strip()
    if not value:
        violations.append(FieldViolation(field, "is required"))
    elif len(value) > MAX_NAME:
        violations.append(FieldViolation(field, f"is longer than {MAX_NAME} characters"))
    return value


# --- programmes -------------------------------------------------------------------------------------


def programme_to_proto(programme: Programme, version: int, created_at: dt.datetime | None = None):
    return vc.Programme(
        name=programme.name,
        version=version,
        policies=programme.policies,
        default_policy=programme.default_policy,
        description=programme.description,
        create_time=_time(created_at),
    )


def programme_from_proto(msg: vc.Programme) -> tuple[Programme, int]:
    return Programme(msg.name, tuple(msg.policies), msg.default_policy, msg.description), msg.version


def define_programme_args(request: vc.DefineProgrammeRequest) -> tuple[str, tuple[str, ...], str, str]:
    """(name, policies, default, description) as asked; ``Programmes.define`` checks them."""
    return (
        request.name,
        tuple(p.strip() for p in request.policies),
        request.default_policy.strip(),
        request.description,
    )


def renamed_for_request(exc: InvalidArgument) -> InvalidArgument:
    """``Programmes.define``'s violations, named by the request's fields."""
    return InvalidArgument(
        [FieldViolation(DEFINE_FIELDS.get(v.field, v.field), v.description) for v in exc.violations]
    )


# --- plans -------------------------------------------------------------------------------------------


def plan_votes_args(request: vc.PlanVotesRequest) -> tuple[Meeting | None, str, str, dt.date | None]:
    """(the meeting given, or None; the stored meeting's key or id; the programme; as_of),
    every bad field at once."""
    violations: list[FieldViolation] = []
    meeting, ref = None, ""
    source = request.WhichOneof("meeting_source")
    if source == "meeting":
        try:
            meeting = meeting_from_proto(request.meeting, "meeting")
        except InvalidArgument as exc:
            violations.extend(exc.violations)
    elif source == "meeting_ref":
        ref = required_name(violations, "meeting_ref", request.meeting_ref)
    else:
        violations.append(FieldViolation("meeting", "give the meeting, or meeting_ref naming a stored one"))
    programme = required_name(violations, "programme", request.programme)
    as_of = None
    try:
        as_of = parse_as_of(request.as_of, "as_of")
    except InvalidArgument as exc:
        violations.extend(exc.violations)
    if violations:
        raise InvalidArgument(violations)
    return meeting, ref, programme, as_of


def outline_to_proto(outline: PlanOutline) -> vc.VotePlan:
    plan = outline.plan
    return vc.VotePlan(
        plan_id=outline.plan_id,
        meeting_id=plan.meeting_id,
        meeting_date=_date(outline.meeting_date),
        record_date=_date(plan.record_date),
        security=plan.security,
        as_of=_date(outline.as_of),
        programme=programme_to_proto(outline.programme, outline.programme_version),
        policies=[
            vc.PlanPolicy(
                policy=p.policy,
                decision_id=p.decision_id,
                accounts=p.accounts,
                shares=shares_text(p.shares),
                votes=[VOTE_VALUES[v] for v in p.votes],
            )
            for p in plan.policies
        ],
        items=[
            vc.ItemTotals(
                item_id=i.item_id,
                shares_by_vote=[
                    vc.VoteShares(vote=VOTE_VALUES[v], shares=shares_text(s)) for v, s in i.shares_by_vote
                ],
                referred_shares=shares_text(i.referred_shares),
                referred_accounts=i.referred_accounts,
                referred_policies=i.referred_policies,
                total=shares_text(i.total),
                board_recommendation=VOTE_VALUES.get(i.board_recommendation, 0),
                categories=[NPX_VALUES[c] for c in i.categories],
            )
            for i in plan.items
        ],
        accounts=outline.accounts,
        defaulted_accounts=outline.defaulted_accounts,
        total_shares=shares_text(outline.total_shares),
        not_offered=[
            vc.NotOfferedAccount(account_id=a, chosen_policy=p)
            for a, p in outline.not_offered[:NOT_OFFERED_SHOWN]
        ],
        not_offered_count=outline.not_offered_count,
        plan_hash=outline.plan_hash,
        create_time=_time(outline.created_at),
    )


def outline_from_proto(msg: vc.VotePlan) -> PlanOutline:
    """The outline a server sent (its ``plan.accounts`` empty: ``positions_from_proto`` pages them)."""
    programme, version = programme_from_proto(msg.programme)
    plan = VotePlan(
        msg.meeting_id,
        programme.name,
        msg.security,
        dt.date.fromisoformat(msg.record_date) if msg.record_date else None,
        tuple(i.item_id for i in msg.items),
        tuple(
            PolicyShare(
                p.policy,
                p.decision_id,
                p.accounts,
                shares_value(p.shares, f"policies[{n}].shares"),
                tuple(VOTE_NAMES[v] for v in p.votes),
            )
            for n, p in enumerate(msg.policies)
        ),
        tuple(
            ItemTotals(
                i.item_id,
                tuple(
                    (VOTE_NAMES[s.vote], shares_value(s.shares, f"items[{n}].shares_by_vote"))
                    for s in i.shares_by_vote
                ),
                shares_value(i.referred_shares, f"items[{n}].referred_shares"),
                i.referred_accounts,
                tuple(i.referred_policies),
                shares_value(i.total, f"items[{n}].total"),
                VOTE_NAMES.get(i.board_recommendation, ""),
                tuple(NPX_NAMES[c] for c in i.categories),
            )
            for n, i in enumerate(msg.items)
        ),
        (),
    )
    return PlanOutline(
        msg.plan_id,
        plan,
        programme,
        version,
        dt.date.fromisoformat(msg.as_of),
        dt.date.fromisoformat(msg.meeting_date),
        msg.accounts,
        msg.defaulted_accounts,
        shares_value(msg.total_shares, "total_shares"),
        tuple((a.account_id, a.chosen_policy) for a in msg.not_offered),
        msg.not_offered_count,
        msg.plan_hash,
        parse_time(msg.create_time),
    )


def position_to_proto(p: AccountPosition) -> vc.AccountPosition:
    return vc.AccountPosition(
        account_id=p.account_id,
        custodian_account=p.custodian_account,
        policy=p.policy,
        chose=p.chose,
        shares=shares_text(p.shares),
    )


def positions_from_proto(messages) -> list[AccountPosition]:
    return [
        AccountPosition(
            m.account_id,
            m.policy,
            shares_value(m.shares, f"accounts[{n}].shares"),
            m.chose,
            m.custodian_account,
        )
        for n, m in enumerate(messages)
    ]


def list_plans_args(
    request: vc.ListPlansRequest,
) -> tuple[str | None, dt.date | None, dt.date | None, str | None]:
    """(programme, date_from, date_to, meeting_id) to filter on, None where not given; every
    bad field at once (a date that is no YYYY-MM-DD, date_from after date_to, a name too long)."""
    violations: list[FieldViolation] = []

    def optional_name(field: str, text: str) -> str | None:
        value = text.strip()
        if len(value) > MAX_NAME:
            violations.append(FieldViolation(field, f"is longer than {MAX_NAME} characters"))
        return value or None

    programme = optional_name("programme", request.programme)
    dates = []
    for field in ("date_from", "date_to"):
        try:
            dates.append(parse_as_of(getattr(request, field), field))
        except InvalidArgument as exc:
            violations.extend(exc.violations)
            dates.append(None)
    date_from, date_to = dates
    if date_from and date_to and date_from > date_to:
        violations.append(FieldViolation("date_from", f"{date_from} is after date_to {date_to}"))
    meeting_id = optional_name("meeting_id", request.meeting_id)
    if violations:
        raise InvalidArgument(violations)
    return programme, date_from, date_to, meeting_id


def plan_summary_to_proto(summary) -> vc.PlanSummary:
    """``summary``: a ``store.vote_plans.PlanSummary``."""
    return vc.PlanSummary(
        plan_id=summary.plan_id,
        programme=summary.programme,
        programme_version=summary.programme_version,
        meeting_id=summary.meeting_id,
        meeting_date=_date(summary.meeting_date),
        record_date=_date(summary.record_date),
        security=summary.security,
        accounts=summary.accounts,
        plan_hash=summary.plan_hash,
        create_time=_time(summary.created_at),
    )


def plan_summary_values(msg: vc.PlanSummary) -> tuple:
    """A listed plan's fields in ``PlanSummary``'s order (the store's type; the CLI builds it)."""
    return (
        msg.plan_id,
        msg.programme,
        msg.programme_version,
        msg.meeting_id,
        dt.date.fromisoformat(msg.meeting_date),
        dt.date.fromisoformat(msg.record_date),
        msg.security,
        msg.accounts,
        msg.plan_hash,
        parse_time(msg.create_time),
    )


def parse_time(text: str) -> dt.datetime | None:
    """An RFC 3339 time as ``_time`` writes it, aware (UTC); None for empty."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def replay_to_proto(plan_id: str, replay) -> vc.ReplayPlanResponse:
    """``replay``: an ``app.vote_plans.PlanReplay``."""
    return vc.ReplayPlanResponse(
        plan_id=plan_id,
        identical=replay.identical,
        decisions=[
            vc.DecisionReplay(policy=p, decision_id=d, identical=same) for p, d, same in replay.decisions
        ],
        differing_item_ids=replay.differing_item_ids,
    )


# --- exports -----------------------------------------------------------------------------------------


def not_instructed_to_proto(n) -> vc.NotInstructed:
    """``n``: a ``wire.seev.NotInstructed``."""
    return vc.NotInstructed(
        custodian_account=n.custodian_account,
        item_id=n.item_id,
        label=n.label,
        shares=shares_text(n.shares),
        accounts=n.accounts,
        policies=n.policies,
    )


def seev004_messages(batch, plan_id: str, meeting_id: str):
    """The stream of ExportSeev004Response: one per custodian account (in account order), then
    the summary. ``batch``: a ``wire.seev.InstructionBatch``."""
    referred: dict[str, list] = {}
    for n in batch.not_instructed:
        referred.setdefault(n.custodian_account, []).append(n)
    for account in sorted(batch.messages):
        yield vc.ExportSeev004Response(
            instruction=vc.Seev004Instruction(
                custodian_account=account,
                instruction_id=batch.instruction_ids[account],
                xml=batch.messages[account],
                not_instructed=[not_instructed_to_proto(n) for n in referred.pop(account, ())],
            )
        )
    yield vc.ExportSeev004Response(
        summary=vc.Seev004Summary(
            plan_id=plan_id,
            meeting_id=meeting_id,
            instructions=len(batch.messages),
            not_instructed=[not_instructed_to_proto(n) for rest in referred.values() for n in rest],
        )
    )


def npx_to_proto(table, period, meetings: int) -> vc.ExportNpxResponse:
    """``table``: a ``wire.npx_out.VoteTable``; ``period`` its ``ReportingPeriod``."""
    return vc.ExportNpxResponse(
        xml=table.xml,
        rows=table.rows,
        meetings=meetings,
        period_start=period.start.isoformat(),
        period_end=period.end.isoformat(),
        not_voted=[vc.NotVoted(meeting_id=m, item_id=i, reason=why) for m, i, why in table.not_voted],
    )
