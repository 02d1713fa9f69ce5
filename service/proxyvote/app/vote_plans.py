"""The vote plan of a meeting for a voting-choice programme: decided, split, stored, replayable.

For a tenant, a meeting and a programme: the accounts' positions at the meeting's
record date (``core.vote_plan.positions_at`` over the stored choice versions and
holdings), one decision of the meeting under each offered policy some account
follows (each recorded in the decision log), then ``core.vote_plan.plan_votes``.
The plan is stored with the decision ids, the programme version, the record date,
the per-item totals and the positions it was made from, so ``replay`` can decide
again from the stored decisions and recompute it.
"""

from __future__ import annotations

import datetime as dt
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from proxyvote.app.backtest import no_gc_pauses
from proxyvote.app.decision_log import DecisionLog, Recorded
from proxyvote.core.meetings import normalise_identifier
from proxyvote.core.model import Meeting, MeetingDecision, RecommendCommand
from proxyvote.core.vote_plan import (
    AccountPosition,
    ItemTotals,
    PlanOutline,
    PolicyShare,
    Positions,
    Programme,
    VotePlan,
    check_totals,
    plan_votes,
    positions_at,
    record_date_of,
    shares_text,
)
from proxyvote.errors import FieldViolation, InvalidArgument, NotFound
from proxyvote.store import SHARED
from proxyvote.store.meetings import PastMeetingRepository
from proxyvote.store.programmes import ParsedOnce, ProgrammeRepository
from proxyvote.store.vote_plans import PlanSummary, VotePlanRecord, VotePlanRepository
from proxyvote.wire.meeting_files import meeting_from_body


@dataclass(frozen=True)
class StoredPlan:
    """A plan as stored: the meeting, the plan (every account's position and every item's
    totals), the programme version it applied, the decision ids per policy, and the
    accounts whose chosen policy was no longer offered (they followed the default)."""

    summary: PlanSummary
    meeting: Meeting
    plan: VotePlan
    programme: Programme
    programme_version: int
    as_of: dt.date
    not_offered: tuple[tuple[str, str], ...]

    @property
    def plan_id(self) -> str:
        return self.summary.plan_id

    @property
    def decision_ids(self) -> dict[str, str]:
        return {p.policy: p.decision_id for p in self.plan.policies}

    def outline(self, not_offered_limit: int | None = None) -> PlanOutline:
        """The plan without its per-account rows; the first ``not_offered_limit`` of the
        accounts whose chosen policy is no longer offered (all of them by default)."""
        plan = self.plan
        return PlanOutline(
            self.plan_id,
            replace(plan, accounts=()),
            self.programme,
            self.programme_version,
            self.as_of,
            self.summary.meeting_date,
            len(plan.accounts),
            sum(1 for a in plan.accounts if not a.chose),
            plan.total_shares,
            self.not_offered[:not_offered_limit],
            len(self.not_offered),
            self.summary.plan_hash,
            self.summary.created_at,
        )


@dataclass(frozen=True)
class PlanReplay:
    """``identical``: every decision replays byte for byte and the recomputed plan equals the
    stored one; otherwise ``decisions`` and ``differing_item_ids`` say where it differs."""

    identical: bool
    decisions: tuple[tuple[str, str, bool], ...]  # (policy, decision id, identical)
    differing_item_ids: tuple[str, ...]
    plan: VotePlan


def _securities(meeting: Meeting) -> tuple[str, ...]:
    """The meeting's security identifiers holdings are matched on: ISIN first, then CUSIP."""
    codes = (normalise_identifier(meeting.issuer.isin), normalise_identifier(meeting.issuer.cusip))
    return tuple(c for c in dict.fromkeys(codes) if c)


def decision_as_of(meeting: Meeting, today: dt.date) -> dt.date:
    """What the plan's decisions may know: today, or the meeting date for a past meeting
    (no evidence published after the meeting)."""
    return min(today, meeting.meeting_date)


# --- the stored form ---------------------------------------------------------------------------------


def canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def plan_document(plan: VotePlan, programme: Programme, version: int, as_of: dt.date, not_offered) -> dict:
    """The plan's figures as JSON values (shares as exact decimal strings)."""
    return {
        "meeting_id": plan.meeting_id,
        "security": plan.security,
        "record_date": plan.record_date.isoformat() if plan.record_date else None,
        "as_of": as_of.isoformat(),
        "programme": {
            "name": programme.name,
            "version": version,
            "policies": list(programme.policies),
            "default": programme.default_policy,
            "description": programme.description,
        },
        "item_ids": list(plan.item_ids),
        "policies": [
            {
                "policy": p.policy,
                "decision_id": p.decision_id,
                "accounts": p.accounts,
                "shares": shares_text(p.shares),
                "votes": list(p.votes),
            }
            for p in plan.policies
        ],
        "items": [
            {
                "item_id": i.item_id,
                "shares_by_vote": [[v, shares_text(s)] for v, s in i.shares_by_vote],
                "referred_shares": shares_text(i.referred_shares),
                "referred_accounts": i.referred_accounts,
                "referred_policies": list(i.referred_policies),
                "total": shares_text(i.total),
                "board_recommendation": i.board_recommendation,
                "categories": list(i.categories),
            }
            for i in plan.items
        ],
        "accounts": len(plan.accounts),
        "not_offered": len(not_offered),
    }


def outline_document(outline: PlanOutline) -> dict:
    """``plan_document`` of an outline: the same JSON values, counts from the outline."""
    doc = plan_document(
        outline.plan, outline.programme, outline.programme_version, outline.as_of, outline.not_offered
    )
    return doc | {"accounts": outline.accounts, "not_offered": outline.not_offered_count}


POSITIONS_FORMAT = "positions/2"


def encode_positions(positions: Sequence[AccountPosition], not_offered) -> bytes:
    """The positions as zlib-compressed canonical JSON, column by column (one list per field,
    in account order) under a format marker, so a 100,000-account plan encodes and decodes
    in one pass per column; shares as exact decimal text, spelled once per distinct value."""
    text = ParsedOnce(shares_text)
    columns = {
        "format": POSITIONS_FORMAT,
        "account_id": [p.account_id for p in positions],
        "custodian_account": [p.custodian_account for p in positions],
        "policy": [p.policy for p in positions],
        "chose": [int(p.chose) for p in positions],
        "shares": [text[p.shares] for p in positions],
        "not_offered": [list(n) for n in not_offered],
    }
    return zlib.compress(canonical(columns).encode(), 1)  # level 1: 5 times faster, 25% larger


def decode_positions(blob: bytes) -> tuple[tuple[AccountPosition, ...], tuple[tuple[str, str], ...]]:
    """The positions ``encode_positions`` stored; refuses (ValueError) a blob of another format.
    Plans stored before the column format (one ``[account, custodian, policy, chose, shares]``
    list per account, no marker) are read too."""
    data = json.loads(zlib.decompress(blob))
    not_offered = tuple((a, p) for a, p in data["not_offered"])
    marker = data.get("format")
    if marker is None and "accounts" in data:
        positions = tuple(AccountPosition(a, p, Decimal(s), bool(c), k) for a, k, p, c, s in data["accounts"])
        return positions, not_offered
    if marker != POSITIONS_FORMAT:
        raise ValueError(
            f"stored positions are in format {marker!r}; this version reads {POSITIONS_FORMAT!r} only"
        )
    columns = [data[k] for k in ("account_id", "policy", "shares", "chose", "custodian_account")]
    if len({len(c) for c in columns}) > 1:
        raise ValueError("stored positions are damaged: their columns differ in length")
    amount = ParsedOnce(Decimal)
    shares = [amount[s] for s in data["shares"]]
    chose = [bool(c) for c in data["chose"]]
    positions = tuple(
        map(AccountPosition, data["account_id"], data["policy"], shares, chose, data["custodian_account"])
    )
    return positions, not_offered


def plan_from_document(doc: dict, positions: tuple[AccountPosition, ...]) -> VotePlan:
    return VotePlan(
        doc["meeting_id"],
        doc["programme"]["name"],
        doc["security"],
        dt.date.fromisoformat(doc["record_date"]) if doc["record_date"] else None,
        tuple(doc["item_ids"]),
        tuple(
            PolicyShare(p["policy"], p["decision_id"], p["accounts"], Decimal(p["shares"]), tuple(p["votes"]))
            for p in doc["policies"]
        ),
        tuple(
            ItemTotals(
                i["item_id"],
                tuple((v, Decimal(s)) for v, s in i["shares_by_vote"]),
                Decimal(i["referred_shares"]),
                i["referred_accounts"],
                tuple(i["referred_policies"]),
                Decimal(i["total"]),
                i["board_recommendation"],
                tuple(i["categories"]),
            )
            for i in doc["items"]
        ),
        positions,
    )


# --- the service -------------------------------------------------------------------------------------


class VotePlans:
    def __init__(
        self,
        log: DecisionLog,
        programmes: ProgrammeRepository,
        plans: VotePlanRepository,
        meetings: PastMeetingRepository,
    ):
        self.log = log
        self.programmes = programmes
        self.plans = plans
        self.meetings = meetings

    @classmethod
    def from_app(cls, app) -> VotePlans:
        return cls(app.log, app.store.programmes, app.store.vote_plans, app.store.meetings)

    def find_meeting(self, tenant: str, ident: str) -> Meeting:
        """A meeting stored by ``proxyvote meetings import`` (the tenant's own or the shared
        set), by meeting key or meeting id."""
        owners = (tenant, SHARED) if tenant != SHARED else (SHARED,)
        meeting = self.meetings.find(owners, ident)
        if meeting is None:
            raise NotFound("meeting", ident)
        return meeting

    def positions(self, tenant: str, programme: Programme, meeting: Meeting) -> Positions:
        """The programme's accounts holding the meeting's security at its record date."""
        securities = _securities(meeting)
        if not securities:
            raise InvalidArgument(
                [FieldViolation("meeting.issuer", "names no ISIN or CUSIP, so no holding can match it")]
            )
        on = record_date_of(meeting)
        with no_gc_pauses():  # some 200,000 rows and 100,000 positions, none in a cycle
            choices, holdings = self.programmes.choices_and_holdings(tenant, programme.name, securities, on)
            return positions_at(programme, on, choices, holdings)

    def decide_policies(
        self,
        tenant: str,
        meeting: Meeting,
        policies: Sequence[str],
        as_of: dt.date,
        today: dt.date,
        deadline: float | None = None,
    ) -> dict[str, Recorded]:
        """The meeting decided under every policy in one pass (each item classified once,
        each policy evaluated once per item), each decision recorded in the log; all stored
        in one transaction or none."""
        if not policies:
            return {}
        recorded = self.log.recommend_many(
            tenant, RecommendCommand(meeting, policies[0], as_of), tuple(policies), today, deadline
        )
        return dict(zip(policies, recorded, strict=True))

    def make(
        self,
        tenant: str,
        meeting: Meeting,
        programme_name: str,
        today: dt.date,
        as_of: dt.date | None = None,
        deadline: float | None = None,
    ) -> StoredPlan:
        """Decides, plans and stores; the stored plan. ``deadline`` (a time.monotonic() value):
        past it, the decisions are neither made nor stored (DeadlineExceeded)."""
        with no_gc_pauses():  # 100,000 accounts' rows and positions, none in a cycle
            return self._make(tenant, meeting, programme_name, today, as_of, deadline)

    def _make(
        self,
        tenant: str,
        meeting: Meeting,
        programme_name: str,
        today: dt.date,
        as_of: dt.date | None,
        deadline: float | None,
    ) -> StoredPlan:
        stored_programme = self.programmes.get(tenant, programme_name)
        programme = stored_programme.programme
        positions = self.positions(tenant, programme, meeting)
        if not positions.positions:
            raise InvalidArgument(
                [
                    FieldViolation(
                        "programme",
                        f"no account of {programme.name} holds {' or '.join(_securities(meeting))} "
                        f"on the record date {positions.record_date}",
                    )
                ]
            )
        followed = sorted({p.policy for p in positions.positions})
        as_of = as_of or decision_as_of(meeting, today)
        recorded = self.decide_policies(tenant, meeting, followed, as_of, today, deadline)
        plan = plan_votes(
            programme,
            _securities(meeting)[0],
            positions.record_date,
            {p: r.decision for p, r in recorded.items()},
            {p: r.decision_id for p, r in recorded.items()},
            positions.positions,
        )
        check_totals(plan)
        doc = plan_document(plan, programme, stored_programme.version, as_of, positions.not_offered)
        summary = self.plans.add(
            VotePlanRecord(
                owner=tenant,
                programme=programme.name,
                programme_version=stored_programme.version,
                meeting_id=meeting.meeting_id,
                meeting_date=meeting.meeting_date,
                record_date=positions.record_date,
                security=plan.security,
                accounts=len(plan.accounts),
                meeting=next(iter(recorded.values())).meeting_body,  # serialised once, by the log
                plan=canonical(doc),
                positions=encode_positions(plan.accounts, positions.not_offered),
            )
        )
        return StoredPlan(
            summary, meeting, plan, programme, stored_programme.version, as_of, positions.not_offered
        )

    def get(self, tenant: str, plan_id: str, accounts: bool = True) -> StoredPlan:
        """A stored plan, as the exporters (seev.004, N-PX) read it. ``accounts=False``: the
        totals only (no account positions decoded, ``not_offered`` empty), which is all an
        N-PX table needs, and a hundred times less work for a large programme."""
        row = self.plans.get(tenant, plan_id)
        doc = json.loads(row.plan)
        positions, not_offered = (), ()
        if accounts:
            with no_gc_pauses():
                positions, not_offered = decode_positions(row.positions)
        p = doc["programme"]
        programme = Programme(p["name"], tuple(p["policies"]), p["default"], p["description"])
        return StoredPlan(
            row.summary,
            meeting_from_body(row.meeting),
            plan_from_document(doc, positions),
            programme,
            p["version"],
            dt.date.fromisoformat(doc["as_of"]),
            not_offered,
        )

    def list(
        self,
        tenant: str,
        programme: str | None = None,
        date_from: dt.date | None = None,
        date_to: dt.date | None = None,
        meeting_id: str | None = None,
    ) -> list[PlanSummary]:
        """The tenant's plans by meeting date (inclusive range), of one programme and one
        meeting if named."""
        return self.plans.list(tenant, programme, date_from, date_to, meeting_id)

    def latest(
        self,
        tenant: str,
        programme: str,
        date_from: dt.date | None = None,
        date_to: dt.date | None = None,
        meeting_id: str | None = None,
        accounts: bool = True,
    ) -> list[StoredPlan]:
        """The most recent plan of each meeting of ``programme`` (meeting dates in the inclusive
        range; one meeting if ``meeting_id``), by meeting date: what the exporters send.
        A meeting planned again (new choices, new holdings) is sent as last planned."""
        newest: dict[str, PlanSummary] = {}
        for summary in self.list(tenant, programme, date_from, date_to, meeting_id):
            newest[summary.meeting_id] = summary  # list() orders by creation within a date
        ordered = sorted(newest.values(), key=lambda s: (s.meeting_date, s.meeting_id))
        return [self.get(tenant, s.plan_id, accounts) for s in ordered]

    def replay(self, tenant: str, plan_id: str) -> PlanReplay:
        """Each decision decided again from its stored inputs (``DecisionLog.replay``), the
        plan recomputed from them and the stored positions, and compared with the stored plan."""
        stored = self.get(tenant, plan_id)
        decisions: dict[str, MeetingDecision] = {}
        checks = []
        for share in stored.plan.policies:
            replay = self.log.replay(tenant, share.decision_id)
            decisions[share.policy] = replay.decision
            checks.append((share.policy, share.decision_id, replay.identical))
        plan = plan_votes(
            stored.programme,
            stored.plan.security,
            stored.plan.record_date,
            decisions,
            stored.decision_ids,
            stored.plan.accounts,
        )
        before = plan_document(stored.plan, stored.programme, stored.programme_version, stored.as_of, ())
        after = plan_document(plan, stored.programme, stored.programme_version, stored.as_of, ())
        old_items = {i["item_id"]: i for i in before["items"]}
        differing = tuple(i["item_id"] for i in after["items"] if old_items.get(i["item_id"]) != i)
        identical = all(ok for _, _, ok in checks) and before == after
        return PlanReplay(identical, tuple(checks), differing, plan)
