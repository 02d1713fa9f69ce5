"""Inputs shared by the benchmarks and tests/test_differential.py: the RPC requests
and the engine workload.

The engine workload is the three example meetings plus synthetic meetings whose
items vary titles, proponents, board recommendations, vote cards, issuers
(with and without evidence) and as-of dates, so every reachable rule of
human-rights-esg fires somewhere (run.py checks and prints the coverage).

The RPC benchmark sends either one request over and over (``rpc_request``) or
a distinct meeting in every call (``DistinctRequests``): items drawn from the
whole workload, reshuffled, under one of many issuers, each with its own
evidence, at one of the workload's as-of dates.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import random
from pathlib import Path

from google.protobuf import json_format
from proxyvote.core.evidence import evidence_as_of
from proxyvote.v1 import meeting_pb2
from proxyvote.v1 import recommendation_service_pb2 as rs
from proxyvote.wire import convert

ROOT = Path(__file__).resolve().parents[1]
MEETINGS = ROOT / "examples" / "meetings"
EVIDENCE = ROOT / "examples" / "evidence" / "amazon.json"
POLICY = "human-rights-esg"
AS_OF = "2020-05-20"
RPC_ITEMS = 20


def example_meeting_proto(name: str) -> meeting_pb2.Meeting:
    return convert.meeting_message_from_json((MEETINGS / name).read_text(encoding="utf-8"))


def evidence_records():
    """The example evidence (Amazon) as domain records."""
    return convert.evidence_from_json(EVIDENCE.read_text(encoding="utf-8"))


def evidence_protos():
    return [convert.evidence_to_proto(r) for r in evidence_records()]


def rpc_request() -> rs.RecommendRequest:
    """The brief's request: Amazon 2020, first 20 items, human-rights-esg, with evidence."""
    meeting = example_meeting_proto("amazon-2020-agm.json")
    del meeting.items[RPC_ITEMS:]
    return rs.RecommendRequest(meeting=meeting, policy=POLICY, as_of=AS_OF, evidence=evidence_protos())


# --- Synthetic items ----------------------------------------------------------
# (title, proponent kind, proponent name). Titles are worded like real proxy
# items so the taxonomy places them the way it would place a real ballot.
SHAREHOLDER_TITLES = [
    "Shareholder proposal requesting a report on the civil and human rights risks of facial recognition",
    "Shareholder proposal requesting an independent study of Rekognition and report to shareholders",
    "Shareholder proposal to prohibit sales of facial recognition technology to government agencies",
    "Shareholder proposal requesting an independent review and report on customer due diligence",
    "Shareholder proposal requesting a report on efforts to restrict products that promote hate speech",
    "Shareholder proposal requesting a report on the company's management of user privacy and data",
    "Shareholder proposal requesting a human rights impact assessment of high-risk products",
    "Shareholder proposal requesting a report on worker health and safety in fulfillment centers",
    "Shareholder proposal requesting a report on freedom of association and collective bargaining",
    "Shareholder proposal requesting a policy on human rights due diligence in the supply chain",
    "Shareholder proposal requesting a report on gender and racial pay",
    "Shareholder proposal requesting a racial equity audit",
    "Shareholder proposal requesting a diversity and equity audit report",
    "Shareholder proposal requesting a report on the effects of food waste",
    "Shareholder proposal requesting a report on plastic packaging",
    "Shareholder proposal requesting a report on climate change",
    "Shareholder proposal requesting the adoption of science-based greenhouse gas emissions "
    "reduction targets",
    "Shareholder proposal asking the board to set greenhouse gas emissions reduction targets",
    "Shareholder proposal to require the company to phase out all fossil fuel customers by 2025",
    "Shareholder proposal requesting a report on the company's tax transparency",
    "Shareholder proposal requesting a report on animal welfare",
    "Shareholder proposal requesting a mandatory independent board chair policy",
    "Shareholder proposal requesting an additional reduction in the threshold for calling special meetings",
    "Shareholder proposal to allow shareholders to act by written consent",
    "Shareholder proposal to adopt proxy access",
    "Shareholder proposal to submit any poison pill to a shareholder vote",
    "Shareholder proposal requesting a recapitalization plan for all stock to have one vote per share",
    "Shareholder proposal on the company's capital structure and share repurchases",
    "Shareholder proposal requesting additional reporting on lobbying",
    "Shareholder proposal requesting a report on political contributions and expenditures",
    "Shareholder proposal requesting a report on the risks of the company's diversity programs",
    "Shareholder proposal to abandon the company's net-zero commitments",
    "Shareholder proposal to link executive compensation to ESG metrics",
    "Shareholder proposal to adopt a policy on executive pay clawbacks",
    "Shareholder proposal requesting a report on board oversight of risk",
    "Shareholder proposal requesting a board diversity policy",
    "Shareholder proposal regarding the annual meeting venue",
    "Shareholder proposal requesting an advisory vote on the frequency of say-on-pay votes",
]
ANTI_ESG_NAME = "National Center for Public Policy Research"
MANAGEMENT_TITLES = [
    "Election of Director: {name}",
    "Ratification of the appointment of Ernst & Young LLP as independent auditors",
    "Advisory vote to approve executive compensation",
    "Advisory vote on the frequency of future advisory votes on executive compensation",
    "Amendment to the certificate of incorporation to lower the stock ownership threshold for "
    "shareholders to request a special meeting",
    "Amendment to the certificate of incorporation to eliminate supermajority voting requirements",
    "Approval of a shareholder rights plan (poison pill)",
    "Amendment to the bylaws to increase the ownership threshold to call a special meeting",
    "Approval of the 2020 Equity Incentive Plan",
    "Approval of the merger agreement with Example Corp",
    "Amendment to increase the number of authorized shares of common stock",
    "Approval of the company's climate transition plan (say on climate)",
    "Approval of the adjournment of the meeting",
    "Amendment and restatement of the bylaws",
]
DIRECTORS = ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra", "Barbara Liskov"]
BOARD = ["FOR", "AGAINST", "NONE"]
CARDS = [
    [],
    ["FOR", "AGAINST", "ABSTAIN"],
    ["FOR", "WITHHOLD"],
    ["ONE_YEAR", "TWO_YEARS", "THREE_YEARS", "ABSTAIN"],
]
ISSUERS = [
    {"name": "Amazon.com, Inc.", "ticker": "AMZN", "country": "US"},
    {"name": "Example Widgets plc", "ticker": "EXWD", "country": "GB"},  # no evidence on record
]
AS_OF_DATES = ["2017-05-20", "2019-05-20", "2020-05-20", "2021-05-20"]
ITEMS_PER_MEETING = 20


def _synthetic_items() -> list[dict]:
    items = []
    variants = itertools.cycle(itertools.product(BOARD, CARDS))
    n = 0
    for title in SHAREHOLDER_TITLES:
        for name in ("", "Sisters of St. Joseph", ANTI_ESG_NAME):
            board, card = next(variants)
            n += 1
            proponent = {"kind": "SHAREHOLDER"}
            if name:
                proponent["name"] = name
            items.append(_item(n, title, proponent, board, card))
    for i, title in enumerate(MANAGEMENT_TITLES):
        for name in DIRECTORS[: 3 if "{name}" in title else 2]:
            board, card = next(variants)
            n += 1
            items.append(_item(n, title.format(name=name), {"kind": "MANAGEMENT"}, board, card))
        if i % 3 == 0:  # some items the caller classified itself
            n += 1
            items.append(
                {
                    **_item(n, title.format(name="Jane Doe"), {"kind": "MANAGEMENT"}, "FOR", []),
                    "category": {"npx_category": "CORPORATE_GOVERNANCE", "topic": "board_governance"},
                }
            )
    # Titles that no topic matches: the unplaced path.
    for title in ("Other business", "Transact such other business as may properly come before the meeting"):
        n += 1
        items.append(_item(n, title, {"kind": "MANAGEMENT"}, "NONE", []))
    return items


def _item(n: int, title: str, proponent: dict, board: str, card: list[str]) -> dict:
    out = {"item_id": f"s{n}", "number": str(n), "title": title, "proponent": proponent}
    if board != "NONE":
        out["board_recommendation"] = board
    if card:
        out["vote_options"] = card
    return out


def synthetic_meeting_protos() -> list[meeting_pb2.Meeting]:
    """Every synthetic item, once per (issuer, as-of) pair, in meetings of 20."""
    items = _synthetic_items()
    meetings = []
    for issuer_index, issuer in enumerate(ISSUERS):
        for date_index, as_of in enumerate(AS_OF_DATES):
            for start in range(0, len(items), ITEMS_PER_MEETING):
                chunk = items[start : start + ITEMS_PER_MEETING]
                doc = {
                    "meeting_id": f"SYN-{issuer_index}-{date_index}-{start // ITEMS_PER_MEETING}",
                    "issuer": issuer,
                    "meeting_type": "ANNUAL",
                    "meeting_date": as_of,
                    "items": chunk,
                }
                meetings.append(json_format.ParseDict(doc, meeting_pb2.Meeting()))
    return meetings


def engine_workload():
    """[(Meeting, EvidenceView)] for the examples (at the brief's and their own dates) and synthetics."""
    evidence = evidence_records()
    out = []
    for name, as_of in (
        ("amazon-2019-agm.json", "2019-05-15"),
        ("amazon-2020-agm.json", AS_OF),
        ("amazon-2021-agm.json", "2021-05-19"),
    ):
        meeting = convert.meeting_from_proto(example_meeting_proto(name))
        out.append((meeting, evidence_as_of(evidence, meeting.issuer, dt.date.fromisoformat(as_of))))
    for msg in synthetic_meeting_protos():
        meeting = convert.meeting_from_proto(msg)
        out.append((meeting, evidence_as_of(evidence, meeting.issuer, meeting.meeting_date)))
    return out


# --- Distinct meetings for the RPC benchmark ------------------------------------


def workload_item_protos() -> list[meeting_pb2.BallotItem]:
    """Every item of the example meetings and every synthetic item, once each."""
    items = []
    for name in ("amazon-2019-agm.json", "amazon-2020-agm.json", "amazon-2021-agm.json"):
        items.extend(example_meeting_proto(name).items)
    items.extend(json_format.ParseDict(item, meeting_pb2.BallotItem()) for item in _synthetic_items())
    return items


def issuer_evidence(issuer: dict, index: int) -> list:
    """The Amazon records re-addressed to ``issuer``: every issuer has evidence of its own."""
    if issuer["name"] == ISSUERS[0]["name"]:
        return evidence_protos()
    return [
        convert.evidence_to_proto(
            dataclasses.replace(
                r,
                evidence_id=f"i{index}-{r.evidence_id}",
                issuer_name=issuer["name"],
                issuer_ticker=issuer["ticker"],
            )
        )
        for r in evidence_records()
    ]


class DistinctRequests:
    """Recommend requests that differ from call to call, built before anything is timed.

    Request n has meeting id ``BENCH-<seed>-<n>``, ``items`` items drawn at
    random from the whole workload (examples and synthetic, renumbered), one of
    ``issuers`` issuers (Amazon and made-up ones) with that issuer's evidence,
    and one of the workload's as-of dates. The same seed gives the same requests.
    """

    def __init__(self, issuers: int = 256, items: int = RPC_ITEMS, seed: int = 7):
        self._rng = random.Random(seed)
        self._seed = seed
        self._next = 0
        self._items = items
        self._pool = workload_item_protos()
        names = [ISSUERS[0]] + [
            {"name": f"Bench Issuer {i:04d} Corp.", "ticker": f"BI{i:04d}", "country": "US"}
            for i in range(1, issuers)
        ]
        self._issuers = [
            (meeting_pb2.Issuer(**issuer), issuer_evidence(issuer, i)) for i, issuer in enumerate(names)
        ]

    def request(self) -> rs.RecommendRequest:
        n = self._next
        self._next += 1
        rng = self._rng
        issuer, evidence = rng.choice(self._issuers)
        as_of = rng.choice(AS_OF_DATES)
        meeting = meeting_pb2.Meeting(
            meeting_id=f"BENCH-{self._seed}-{n}", issuer=issuer, meeting_type="ANNUAL", meeting_date=as_of
        )
        for number, source in enumerate(rng.sample(self._pool, self._items), start=1):
            item = meeting.items.add()
            item.CopyFrom(source)
            item.item_id = f"{n}-{number}"
            item.number = str(number)
        return rs.RecommendRequest(meeting=meeting, policy=POLICY, as_of=as_of, evidence=evidence)

    def batch(self, count: int) -> list[bytes]:
        return [self.request().SerializeToString() for _ in range(count)]
