"""A synthetic universe of past meetings, for benchmarks and tests only. Never real.

``synth_meetings(n, seed)`` gives ``n`` meetings (about 12 items each) as the
JSON shape of data-format.md, with a ``provenance`` that says they are made
up: made-up issuers, meetings between 2021 and 2025 that mix director
elections, auditors, say-on-pay and other management items with shareholder
proposals by topic (generic wordings written for this file), outcomes,
two made-up advisers and three made-up funds. The same ``(n, seed)`` gives the
same meetings, byte for byte. ``proxyvote synth`` writes them as JSON lines,
one meeting per line.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Iterator

PROVENANCE = (
    "SYNTHETIC: made up by `proxyvote synth` for benchmarks and tests only; "
    "not a real meeting, issuer, vote, adviser or fund"
)
ADVISERS = ("Synthetic Adviser A", "Synthetic Adviser B")
INVESTORS = ("Synthetic Fund North", "Synthetic Fund South", "Synthetic Fund East")
AUDITORS = ("Example Audit LLP", "Sample & Co LLP", "Placeholder Accountants LLP")
FIRST = ("Alex", "Sam", "Robin", "Jordan", "Casey", "Morgan", "Taylor", "Jamie", "Avery", "Quinn")
LAST = ("Smith", "Jones", "Garcia", "Chen", "Okafor", "Novak", "Silva", "Berg", "Khan", "Moreau")
# (title, base support % for a shareholder proposal) by topic; generic wordings.
SHAREHOLDER_PROPOSALS = (
    ("Shareholder proposal requesting a report on climate change risks", 30),
    ("Shareholder proposal asking the board to set greenhouse gas emissions reduction targets", 25),
    ("Shareholder proposal requesting a report on plastic packaging", 20),
    ("Shareholder proposal requesting a human rights impact assessment of high-risk products", 18),
    ("Shareholder proposal requesting a report on customer due diligence for surveillance products", 22),
    ("Shareholder proposal requesting an independent study of the company's facial recognition products", 25),
    ("Shareholder proposal to prohibit sales of facial recognition technology to government agencies", 3),
    ("Shareholder proposal requesting a report on freedom of association", 30),
    ("Shareholder proposal requesting a report on worker health and safety", 25),
    ("Shareholder proposal requesting a report on gender and racial pay gaps", 20),
    ("Shareholder proposal requesting a racial equity audit", 25),
    ("Shareholder proposal requesting a mandatory independent board chair policy", 35),
    ("Shareholder proposal to reduce the ownership threshold for calling special meetings", 40),
    ("Shareholder proposal to allow shareholders to act by written consent", 38),
    ("Shareholder proposal requesting additional reporting on lobbying", 30),
    ("Shareholder proposal requesting a report on political contributions and expenditures", 28),
    ("Shareholder proposal requesting a report on the risks of the company's diversity programs", 2),
    ("Shareholder proposal to abandon the company's net-zero commitments", 1),
    ("Shareholder proposal requesting a report on the company's tax transparency", 15),
    ("Shareholder proposal requesting a report on animal welfare", 8),
)
MANAGEMENT_EXTRA = (
    ("Approval of the amended equity incentive plan", 88),
    ("Amendment to the certificate of incorporation to eliminate supermajority voting requirements", 97),
    ("Amendment to increase the number of authorized shares of common stock", 80),
    ("Approval of the adjournment of the meeting", 93),
)


def _vote_near(rng: random.Random, support: float, lean: float) -> str:
    """FOR with a probability that grows with the item's support and the voter's lean."""
    return "FOR" if rng.random() * 100 < min(99.0, support * lean + (5 if lean > 1 else 0)) else "AGAINST"


def synth_meetings(n: int, seed: int) -> Iterator[dict]:
    """``n`` synthetic meetings as data-format.md dicts, in a stable order."""
    rng = random.Random(seed)
    issuers = max(1, n // 4)
    for m in range(n):
        i = rng.randrange(issuers)
        year = 2021 + m * 5 // max(n, 1)
        date = dt.date(year, 4, 1) + dt.timedelta(days=rng.randrange(90))
        items = []
        for d in range(rng.randint(6, 10)):
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
            support = rng.uniform(70, 99.5)
            items.append(
                _management(rng, f"1.{d + 1}", f"Election of Director: {name}", support, director=True)
            )
        items.append(
            _management(
                rng, "2", f"Ratification of {rng.choice(AUDITORS)} as auditors", rng.uniform(90, 99.8)
            )
        )
        items.append(
            _management(
                rng,
                "3",
                "Advisory vote to approve named executive officers' compensation",
                rng.uniform(55, 98),
            )
        )
        if rng.random() < 0.3:
            title, base = rng.choice(MANAGEMENT_EXTRA)
            items.append(_management(rng, "4", title, min(99.0, rng.gauss(base, 6))))
        for k in range(rng.choice((0, 0, 1, 1, 2, 3))):
            title, base = rng.choice(SHAREHOLDER_PROPOSALS)
            support = max(0.5, min(80.0, rng.gauss(base, base / 3 + 2)))
            items.append(_shareholder(rng, str(5 + k), title, support))
        yield {
            "meeting_id": f"SYN-{i:06d}-{year}-{m:07d}",
            "provenance": PROVENANCE,
            "issuer": {
                "name": f"Synthetic Issuer {i:06d} Inc.",
                "ticker": f"SYN{i:06d}",
                "country": "US",
            },
            "meeting_type": "ANNUAL",
            "meeting_date": date.isoformat(),
            "items": items,
        }


def _past(rng: random.Random, item: dict, support: float, adviser_lean: tuple, fund_lean: tuple) -> dict:
    item["outcome"] = {"passed": support > 50, "support_pct": round(support, 1)}
    item["adviser_recommendations"] = [
        {"adviser": a, "vote": _vote_near(rng, support, lean)}
        for a, lean in zip(ADVISERS, adviser_lean, strict=True)
    ]
    item["investor_votes"] = [
        {"investor": f, "vote": _vote_near(rng, support, lean), "source": "synthetic"}
        for f, lean in zip(INVESTORS, fund_lean, strict=True)
        if rng.random() < 0.8
    ]
    return item


def _management(rng: random.Random, number: str, title: str, support: float, director: bool = False) -> dict:
    item = {
        "item_id": number,
        "number": number,
        "title": title,
        "proponent": {"kind": "MANAGEMENT"},
        "board_recommendation": "FOR",
    }
    if director:
        item["vote_options"] = ["FOR", "WITHHOLD"]
    return _past(rng, item, support, (1.05, 1.0), (1.02, 0.95, 1.1))


def _shareholder(rng: random.Random, number: str, title: str, support: float) -> dict:
    item = {
        "item_id": number,
        "number": number,
        "title": title,
        "proponent": {"kind": "SHAREHOLDER", "name": "Synthetic Proponent Fund"},
        "board_recommendation": "AGAINST",
    }
    return _past(rng, item, support, (1.6, 1.2), (0.8, 2.0, 1.3))


def write_jsonl(n: int, seed: int, stream) -> int:
    """Writes the meetings, one JSON line each; returns the number of items."""
    items = 0
    for meeting in synth_meetings(n, seed):
        items += len(meeting["items"])
        stream.write(json.dumps(meeting, separators=(",", ":")) + "\n")
    return items


def meetings_from_dicts(meetings) -> list:
    """Domain meetings from the dicts ``synth_meetings`` writes: the fast path for our own files.

    A synthetic file is ours and trusted, so this skips the protobuf round trip
    and field-by-field validation of ``wire.convert.meeting_from_json`` (about
    ten times slower) and shares the values that repeat (votes, outcomes,
    issuers). Anything else goes through ``wire.convert``.
    """
    from proxyvote.core.model import (
        NO_RECOMMENDATION,
        AdviserRecommendation,
        BallotItem,
        InvestorVote,
        Issuer,
        ItemOutcome,
        Meeting,
    )

    advisers: dict = {}
    investors: dict = {}
    outcomes: dict = {}
    issuers: dict = {}
    options: dict = {}
    dates: dict = {}
    out = []
    for m in meetings:
        items = []
        for i in m["items"]:
            o = i.get("outcome")
            outcome = None
            if o is not None:
                key = (o.get("passed"), o.get("support_pct"))
                outcome = outcomes.get(key)
                if outcome is None:
                    outcome = outcomes[key] = ItemOutcome(passed=key[0], support_pct=key[1])
            recs = []
            for a in i.get("adviser_recommendations", ()):
                key = (a["adviser"], a["vote"])
                rec = advisers.get(key)
                if rec is None:
                    rec = advisers[key] = AdviserRecommendation(*key)
                recs.append(rec)
            votes = []
            for v in i.get("investor_votes", ()):
                key = (v["investor"], v["vote"], v.get("source", ""))
                vote = investors.get(key)
                if vote is None:
                    vote = investors[key] = InvestorVote(*key)
                votes.append(vote)
            card = tuple(i.get("vote_options", ()))
            card = options.setdefault(card, card)
            proponent = i["proponent"]
            items.append(
                BallotItem(  # positional: item_id, title, proponent_kind, number, text, proponent_name,
                    # board_recommendation, vote_options, category, outcome, advisers, investors
                    i["item_id"],
                    i["title"],
                    proponent["kind"],
                    i.get("number", ""),
                    i.get("text", ""),
                    proponent.get("name", ""),
                    i.get("board_recommendation", NO_RECOMMENDATION),
                    card,
                    None,
                    outcome,
                    tuple(recs),
                    tuple(votes),
                )
            )
        issuer_key = tuple(sorted(m["issuer"].items()))
        issuer = issuers.get(issuer_key)
        if issuer is None:
            issuer = issuers[issuer_key] = Issuer(**m["issuer"])
        date = dates.get(m["meeting_date"])
        if date is None:
            date = dates[m["meeting_date"]] = dt.date.fromisoformat(m["meeting_date"])
        out.append(
            Meeting(
                meeting_id=m["meeting_id"],
                issuer=issuer,
                meeting_date=date,
                items=tuple(items),
                meeting_type=m.get("meeting_type", ""),
                provenance=m.get("provenance", ""),
            )
        )
    return out


# --- A synthetic voting-choice programme --------------------------------------------------------

ACCOUNT_PROVENANCE = (
    "SYNTHETIC: made up by `proxyvote synth accounts` for benchmarks and tests only; "
    "not a real account, investor, custodian or holding"
)
ACCOUNT_COLUMNS = (
    "account_id",
    "custodian_account",
    "policy",
    "effective_date",
    "security",
    "shares",
    "as_of",
    "note",
)


def synth_accounts(
    n: int,
    security: str,
    policies: tuple[str, ...],
    seed: int,
    as_of: dt.date,
) -> Iterator[dict]:
    """Rows of a synthetic accounts file (docs/voting-choice.md): ``n`` accounts ``SYN-0000001``...
    holding ``security`` as of ``as_of``. About 10% made no choice (the default applies);
    the others chose among ``policies`` with seeded, uneven weights. About 5% also have an
    older choice a year earlier (history). A fifth hold fractional shares (3 decimals).
    Every row's ``note`` says it is synthetic. The same arguments give the same rows."""
    rng = random.Random(seed)
    weights = [rng.uniform(1, 3) for _ in policies]
    custodians = max(1, n // 1000)
    earlier = as_of - dt.timedelta(days=365)
    for i in range(1, n + 1):
        account = f"SYN-{i:07d}"
        custodian = f"SYN-CUSTODY-{rng.randrange(custodians):04d}"
        policy = "" if rng.random() < 0.1 else rng.choices(policies, weights)[0]
        if rng.random() < 0.2:
            shares = f"{rng.randint(1, 5_000_000) / 1000:.3f}"
        else:
            shares = str(rng.randint(1, 20_000))
        if rng.random() < 0.05 and policies:
            yield {
                "account_id": account,
                "custodian_account": custodian,
                "policy": rng.choice(policies),
                "effective_date": earlier.isoformat(),
                "security": "",
                "shares": "",
                "as_of": "",
                "note": "SYNTHETIC",
            }
        yield {
            "account_id": account,
            "custodian_account": custodian,
            "policy": policy,
            "effective_date": as_of.isoformat(),
            "security": security,
            "shares": shares,
            "as_of": as_of.isoformat(),
            "note": "SYNTHETIC",
        }


def write_accounts(rows, path: str) -> int:
    """Writes the rows as CSV (a first comment line says they are synthetic) or, for a
    ``.parquet`` path, as Parquet with every column text (exact shares) and the provenance in
    the file's metadata. Returns the number of rows."""
    rows = list(rows)
    if path.endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({c: pa.array([r[c] for r in rows], pa.string()) for c in ACCOUNT_COLUMNS})
        table = table.replace_schema_metadata({"provenance": ACCOUNT_PROVENANCE})
        pq.write_table(table, path)
        return len(rows)
    import csv

    with open(path, "w", encoding="utf-8", newline="") as stream:
        stream.write(f"# {ACCOUNT_PROVENANCE}\n")
        writer = csv.DictWriter(stream, ACCOUNT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)
