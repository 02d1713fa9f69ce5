"""Voting choice: one meeting decided under several policies, its shares split across
the accounts that chose each one.

Pure values and one function. The caller supplies the decisions (one per policy on
offer, each decided once for the whole meeting) and the accounts' positions at the
meeting's record date; the plan follows without another policy evaluation, so its
cost grows with the number of accounts only through one sum per account.

Quantities are exact decimals (``Decimal``), never floats: each account votes all
of its shares one way on each item, so nothing is ever divided and no rounding
happens. Per item, the totals over every vote and the referred shares equal the
shares held, exactly (``ItemTotals.total``; ``check_totals`` asserts it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from proxyvote.core.model import REFER, VOTES, MeetingDecision

ZERO = Decimal(0)


def shares_text(shares: Decimal) -> str:
    """The one spelling of a share count, stored, sent or written in XML: plain notation,
    no exponent, no trailing zeros (``Decimal("1E+2")`` and ``Decimal("100.0")`` are "100")."""
    text = format(shares.normalize(), "f")
    return "0" if text in ("-0", "0") else text


@dataclass(frozen=True, slots=True)
class Programme:
    """A tenant's voting-choice programme: the policies on offer, and the one used
    for accounts that chose none."""

    name: str
    policies: tuple[str, ...]
    default_policy: str
    description: str = ""

    def __post_init__(self):
        if self.default_policy not in self.policies:
            raise ValueError(f"default policy {self.default_policy!r} is not among those offered")


@dataclass(frozen=True, slots=True)
class AccountPosition:
    """One account at a meeting's record date: the policy in force for it (its own
    choice, or the programme's default), and its shares of the meeting's security."""

    account_id: str
    policy: str
    shares: Decimal
    chose: bool = True  # False: no choice on record, so the default applies
    custodian_account: str = ""  # the safekeeping account its shares sit in (seev.004)


@dataclass(frozen=True, slots=True)
class PolicyShare:
    """What one policy decided for the plan, and how many accounts and shares follow it."""

    policy: str
    decision_id: str
    accounts: int
    shares: Decimal
    votes: tuple[str, ...]  # one per item, in the meeting's order (REFER included)


@dataclass(frozen=True, slots=True)
class ItemTotals:
    item_id: str
    shares_by_vote: tuple[tuple[str, Decimal], ...]  # in VOTES order, zero votes left out
    referred_shares: Decimal
    referred_accounts: int
    referred_policies: tuple[str, ...]
    total: Decimal  # every share held, voted or referred
    board_recommendation: str = ""
    categories: tuple[str, ...] = ()

    def shares(self, vote: str) -> Decimal:
        return dict(self.shares_by_vote).get(vote, ZERO)


@dataclass(frozen=True, slots=True)
class Instruction:
    """One account's instruction on one item: its policy's vote, times its shares."""

    account_id: str
    custodian_account: str
    item_id: str
    policy: str
    vote: str
    shares: Decimal


@dataclass(frozen=True, slots=True)
class VotePlan:
    meeting_id: str
    programme: str
    security: str
    record_date: dt.date | None
    item_ids: tuple[str, ...]
    policies: tuple[PolicyShare, ...]
    items: tuple[ItemTotals, ...]
    accounts: tuple[AccountPosition, ...]

    @property
    def total_shares(self) -> Decimal:
        return sum((p.shares for p in self.policies), ZERO)

    def instructions(self) -> Iterator[Instruction]:
        """Every account's instruction on every item, account by account (lazily: a
        100,000-account plan of 20 items is two million rows)."""
        votes = {p.policy: p.votes for p in self.policies}
        for account in self.accounts:
            for item_id, vote in zip(self.item_ids, votes[account.policy], strict=True):
                yield Instruction(
                    account.account_id,
                    account.custodian_account,
                    item_id,
                    account.policy,
                    vote,
                    account.shares,
                )


def plan_votes(
    programme: Programme,
    security: str,
    record_date: dt.date | None,
    decisions: Mapping[str, MeetingDecision],
    decision_ids: Mapping[str, str],
    positions: Sequence[AccountPosition],
) -> VotePlan:
    """The vote plan of one meeting: ``decisions`` maps each policy of the programme
    that some account follows to its decision of the meeting; ``positions`` are the
    accounts holding the meeting's security at its record date."""
    by_policy: dict[str, list] = {}
    for position in positions:
        tally = by_policy.get(position.policy)
        if tally is None:
            if position.policy not in decisions:
                raise ValueError(f"account {position.account_id}: no decision under {position.policy!r}")
            tally = by_policy[position.policy] = [0, ZERO]
        tally[0] += 1
        tally[1] += position.shares
    meeting = next(iter(decisions.values())).meeting if decisions else None
    item_ids = tuple(item.item_id for item in meeting.items) if meeting else ()
    shares_of = []
    for policy in sorted(by_policy):
        decision = decisions[policy]
        votes = tuple(r.vote for r in decision.recommendations)
        if tuple(r.item_id for r in decision.recommendations) != item_ids:
            raise ValueError(f"the decision under {policy!r} is of another meeting's items")
        accounts, shares = by_policy[policy]
        shares_of.append(PolicyShare(policy, decision_ids.get(policy, ""), accounts, shares, votes))
    items = []
    for index, item in enumerate(meeting.items if meeting else ()):
        per_vote = dict.fromkeys(VOTES, ZERO)
        referred, referred_accounts, referred_policies = ZERO, 0, []
        for share in shares_of:
            vote = share.votes[index]
            if vote == REFER:
                referred += share.shares
                referred_accounts += share.accounts
                referred_policies.append(share.policy)
            else:
                per_vote[vote] += share.shares
        first = next(iter(decisions.values())).recommendations[index]
        total = sum(per_vote.values(), ZERO) + referred
        items.append(
            ItemTotals(
                item.item_id,
                tuple((v, s) for v, s in per_vote.items() if s),
                referred,
                referred_accounts,
                tuple(referred_policies),
                total,
                item.board_recommendation,
                first.classification.npx_categories,
            )
        )
    return VotePlan(
        meeting.meeting_id if meeting else "",
        programme.name,
        security,
        record_date,
        item_ids,
        tuple(shares_of),
        tuple(items),
        tuple(positions),
    )


@dataclass(frozen=True, slots=True)
class PlanOutline:
    """A stored plan without its per-account rows (which may be millions): what the
    VotingChoiceService answers and ``proxyvote plan`` prints. ``plan.accounts`` may be
    empty; ``accounts`` counts them all. ``not_offered`` may be the first few of
    ``not_offered_count`` (account id, the policy it chose that is no longer offered)."""

    plan_id: str
    plan: VotePlan
    programme: Programme
    programme_version: int
    as_of: dt.date
    meeting_date: dt.date
    accounts: int
    defaulted_accounts: int
    total_shares: Decimal
    not_offered: tuple[tuple[str, str], ...]
    not_offered_count: int
    plan_hash: str = ""
    created_at: dt.datetime | None = None


def check_totals(plan: VotePlan) -> None:
    """Raises AssertionError unless every item's votes and referrals add up to the shares held."""
    held = sum((a.shares for a in plan.accounts), ZERO)
    for item in plan.items:
        voted = sum((s for _, s in item.shares_by_vote), ZERO) + item.referred_shares
        if voted != held or item.total != held:
            raise AssertionError(f"item {item.item_id}: {voted} shares planned, {held} held")


# --- Accounts' choices and holdings at a record date ---------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountChoice:
    """One version of an account's choice: from ``effective_date`` on, the account follows
    ``policy`` ("" = no choice: the programme's default applies) and its shares sit in
    ``custodian_account``. A change is a new version with a later date; none is ever edited."""

    account_id: str
    custodian_account: str
    policy: str
    effective_date: dt.date


@dataclass(frozen=True, slots=True)
class Holding:
    """An account's shares of one security (ISIN or CUSIP) as of a date."""

    account_id: str
    security: str
    as_of: dt.date
    shares: Decimal


@dataclass(frozen=True, slots=True)
class Positions:
    """The accounts at a record date, and those whose chosen policy is no longer offered
    (they follow the default: ``(account_id, chosen policy)``)."""

    record_date: dt.date
    positions: tuple[AccountPosition, ...]
    not_offered: tuple[tuple[str, str], ...] = ()


def record_date_of(meeting) -> dt.date:
    """The date positions are taken at: the meeting's record date, else its meeting date."""
    return meeting.record_date or meeting.meeting_date


def positions_at(
    programme: Programme,
    record_date: dt.date,
    choices: Iterable[AccountChoice],
    holdings: Iterable[Holding],
) -> Positions:
    """Each account holding shares at ``record_date``, with the policy in force for it.

    - The choice in force is the version with the latest ``effective_date`` on or before
      the record date; later versions are ignored, earlier ones are history.
    - The holding in force is the one with the latest ``as_of`` on or before the record
      date (over every identifier of the security the caller passes; on one date the
      larger identifier string wins, so the result never depends on row order).
      Accounts with no holding, or zero shares, in force are left out.
    - No choice in force (or a version that withdrew it, ``policy == ""``): the default,
      ``chose=False``. A chosen policy the programme no longer offers: the default too,
      ``chose=False``, and the account is listed in ``not_offered``.
    - The custodian account is the one of the version in force, else of the first version.
    """
    # One pass over each list, touching as little as possible per row (100,000 accounts):
    # later versions are only needed for the custodian of accounts with none in force.
    in_force: dict[str, AccountChoice] = {}
    later: list[AccountChoice] = []
    for choice in choices:
        if choice.effective_date > record_date:
            later.append(choice)
            continue
        current = in_force.setdefault(choice.account_id, choice)
        if current is not choice and choice.effective_date > current.effective_date:
            in_force[choice.account_id] = choice
    first: dict[str, AccountChoice] = {}
    for choice in later:
        if choice.account_id in in_force:
            continue
        earliest = first.setdefault(choice.account_id, choice)
        if earliest is not choice and choice.effective_date < earliest.effective_date:
            first[choice.account_id] = choice
    held: dict[str, Holding] = {}
    for holding in holdings:
        if holding.as_of > record_date:
            continue
        current = held.setdefault(holding.account_id, holding)
        if current is not holding and (holding.as_of, holding.security) > (current.as_of, current.security):
            held[holding.account_id] = holding
    offered = frozenset(programme.policies)
    default = programme.default_policy
    out, not_offered = [], []
    append = out.append
    for account_id in sorted(held):
        shares = held[account_id].shares
        if not shares:
            continue
        choice = in_force.get(account_id)
        if choice is not None:
            if choice.policy in offered:
                append(AccountPosition(account_id, choice.policy, shares, True, choice.custodian_account))
                continue
            if choice.policy:
                not_offered.append((account_id, choice.policy))
            append(AccountPosition(account_id, default, shares, False, choice.custodian_account))
            continue
        version = first.get(account_id)
        custodian = version.custodian_account if version is not None else ""
        append(AccountPosition(account_id, default, shares, False, custodian))
    return Positions(record_date, tuple(out), tuple(not_offered))


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def _cusip_value(ch: str) -> int:
    if ch.isdigit():
        return int(ch)
    if "A" <= ch <= "Z":
        return ord(ch) - ord("A") + 10
    return {"*": 36, "@": 37, "#": 38}[ch]


def security_problem(code: str) -> str | None:
    """Why ``code`` (upper case, trimmed) is not an ISIN or a CUSIP with a valid check digit;
    None when it is one."""
    if len(code) == 12:
        if not (code[:2].isalpha() and code[:2].isascii() and code.isalnum() and code[-1].isdigit()):
            return "an ISIN is 2 letters, 9 letters or digits and a check digit"
        digits = "".join(str(int(ch, 36)) for ch in code)
        return None if _luhn_ok(digits) else "the ISIN's check digit is wrong"
    if len(code) == 9:
        if not all(ch.isascii() and (ch.isalnum() or ch in "*@#") for ch in code) or not code[-1].isdigit():
            return "a CUSIP is 8 letters, digits or *@# and a check digit"
        total = 0
        for i, ch in enumerate(code[:8]):
            value = _cusip_value(ch) * (2 if i % 2 else 1)
            total += value // 10 + value % 10
        return None if (10 - total % 10) % 10 == int(code[8]) else "the CUSIP's check digit is wrong"
    return "is neither an ISIN (12 characters) nor a CUSIP (9)"
