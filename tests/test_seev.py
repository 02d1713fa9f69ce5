"""ISO 20022 in and out: seev.001 -> Meeting -> decisions -> plan -> seev.004 -> read back,
and the N-PX vote table written from plans and read back by the N-PX reader.

The seev.001 fixtures under tests/fixtures/seev/ are hand-written to the published
message definition (seev.001.001.11), as their first comment says; the accounts are
synthetic.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree
from proxyvote.core.classify_eval import category_code
from proxyvote.core.model import REFER
from proxyvote.core.vote_plan import AccountPosition, Programme, check_totals, plan_votes
from proxyvote.errors import InvalidArgument
from proxyvote.wire import npx, seev
from proxyvote.wire.npx_out import ReportingPeriod, vote_table

from tests.conftest import example_evidence
from tests.xml_attacks import billion_laughs, external_entity

FIXTURES = Path(__file__).parent / "fixtures" / "seev"
AMAZON = FIXTURES / "amazon-2020-agm.seev001.xml"
SYNTHETIC = FIXTURES / "synthetic-2025-mixd.seev001.xml"
POLICIES = ("board-aligned", "governance-baseline", "human-rights-esg")
AS_OF = dt.date(2020, 5, 20)


def notification(path: Path = AMAZON) -> seev.Notification:
    return seev.meeting_from_seev001(path.read_bytes(), path.name)


def synthetic_positions() -> list[AccountPosition]:
    """Synthetic accounts: three custodian accounts, each holding accounts under different
    policies (so their instructions split), with fractional and large holdings."""
    rows = [
        ("A-001", "board-aligned", "1200", "CUST-EU-1"),
        ("A-002", "human-rights-esg", "350.5", "CUST-EU-1"),
        ("A-003", "governance-baseline", "75", "CUST-EU-1"),
        ("A-004", "human-rights-esg", "1000000", "CUST-US-7"),
        ("A-005", "human-rights-esg", "0.125", "CUST-US-7"),
        ("A-006", "board-aligned", "999999999.875", "CUST-US-7"),
        ("A-007", "governance-baseline", "42", "CUST-JP-2"),
    ]
    return [AccountPosition(a, p, Decimal(s), True, c) for a, p, s, c in rows]


def referring(decision, item_ids: set[str]):
    """The decision with the given items referred to a person (as a policy does when it
    cannot decide), so the plan has REFER shares to leave out."""
    recommendations = tuple(
        dataclasses.replace(r, outcome=dataclasses.replace(r.outcome, vote=REFER, review_reason="test"))
        if r.item_id in item_ids
        else r
        for r in decision.recommendations
    )
    return dataclasses.replace(decision, recommendations=recommendations)


def plan_for(recommender, meeting, positions=None, refer: dict[str, set[str]] | None = None):
    policies = tuple(recommender.policy(p) for p in POLICIES)
    decisions = recommender.decide_many(meeting, policies, AS_OF, tuple(example_evidence()))
    by_policy = dict(zip(POLICIES, decisions, strict=True))
    for policy, item_ids in (refer or {}).items():
        by_policy[policy] = referring(by_policy[policy], item_ids)
    ids = {p: f"dec-{p}-0001" for p in POLICIES}
    programme = Programme("voting-choice", POLICIES, "board-aligned")
    plan = plan_votes(
        programme,
        meeting.issuer.isin,
        meeting.record_date,
        by_policy,
        ids,
        positions or synthetic_positions(),
    )
    check_totals(plan)
    return plan


# --- seev.001 in ---


def test_the_amazon_notification_maps_to_the_demo_meeting(recommender):
    from tests.conftest import example_meeting

    read = notification()
    meeting, demo = read.meeting, example_meeting()
    assert meeting.meeting_id == "AMZN-2020-AGM" and meeting.meeting_type == "ANNUAL"
    assert meeting.meeting_date == dt.date(2020, 5, 27) and meeting.record_date == dt.date(2020, 3, 30)
    assert (meeting.issuer.name, meeting.issuer.isin, meeting.issuer.cusip, meeting.issuer.ticker) == (
        "Amazon.com, Inc.",
        "US0231351067",
        "023135106",
        "AMZN",
    )
    assert meeting.issuer.country == "US"
    assert [i.item_id for i in meeting.items] == [i.item_id for i in demo.items]
    for ours, theirs in zip(meeting.items, demo.items, strict=True):
        assert (ours.title, ours.proponent_kind, ours.board_recommendation) == (
            theirs.title,
            theirs.proponent_kind,
            theirs.board_recommendation,
        )
        assert ours.vote_options == ("FOR", "AGAINST", "ABSTAIN")
    assert "seev.001.001.11" in meeting.provenance and "IssrMtgId AMZN-AGM-2020" in meeting.provenance


def test_unmapped_elements_are_reported_with_path_and_line():
    read = notification(SYNTHETIC)
    by_path = {n.path: n for n in read.notes}
    expected = {
        "/Document/MtgNtfctn/NtfctnGnlInf/ShrhldrRghtsDrctvInd",
        "/Document/MtgNtfctn/MtgDtls/Lctn",
        "/Document/MtgNtfctn/Scty/Pos",
        "/Document/MtgNtfctn/Rsltn[1]/Desc[2]",
        "/Document/MtgNtfctn/Rsltn[1]/VoteInstrTp[3]",
        "/Document/MtgNtfctn/Rsltn[1]/NtifngPtyRcmmndtn",
        "/Document/MtgNtfctn/Rsltn[2]/VoteTp",
        "/Document/MtgNtfctn/Rsltn[4]",
        "/Document/MtgNtfctn/Rsltn[5]",
    }
    assert expected == set(by_path)
    lines = SYNTHETIC.read_text().splitlines()
    for note in read.notes:
        local = note.path.rsplit("/", 1)[-1].split("[")[0]
        assert f"<{local}>" in lines[note.line - 1], note
    assert "withdrawn" in by_path["/Document/MtgNtfctn/Rsltn[4]"].description
    assert "information only" in by_path["/Document/MtgNtfctn/Rsltn[5]"].description
    meeting = read.meeting
    assert [i.item_id for i in meeting.items] == ["1", "2", "3"]  # 4 withdrawn, 5 for information
    assert meeting.meeting_type == "ANNUAL_SPECIAL"
    assert meeting.items[0].text.startswith("The directors present")
    assert meeting.items[0].vote_options == ("FOR", "AGAINST")  # CHRM is noted, not a vote
    assert meeting.items[1].vote_options == ("ONE_YEAR", "TWO_YEARS", "THREE_YEARS", "ABSTAIN")
    assert meeting.items[1].board_recommendation == "ONE_YEAR"
    assert meeting.items[2].proponent_kind == "SHAREHOLDER"


MALFORMED = b"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:seev.001.001.11">
  <MtgNtfctn>
    <NtfctnGnlInf>
      <NtfctnTp>SOON</NtfctnTp>
      <NtfctnSts><EvtCmpltnsSts>COMP</EvtCmpltnsSts><EvtConfSts>CONF</EvtConfSts></NtfctnSts>
    </NtfctnGnlInf>
    <Mtg>
      <Tp>GMET</Tp>
    </Mtg>
    <MtgDtls>
      <DtAndTm><DtOrDtTm><Dt>2025-02-30</Dt></DtOrDtTm></DtAndTm>
      <Lctn><LctnCd>UKWN</LctnCd></Lctn>
    </MtgDtls>
    <Issr><Id><NmAndAdr><Nm>Example Widgets plc</Nm></NmAndAdr></Id></Issr>
    <Scty><FinInstrmId><ISIN>NOT-AN-ISIN</ISIN></FinInstrmId></Scty>
    <Rsltn>
      <IssrLabl>1</IssrLabl>
      <Desc><Lang>en</Lang><Titl>Receive the accounts</Titl></Desc>
      <ForInfOnly>maybe</ForInfOnly>
      <Sts>ACTV</Sts>
      <MgmtRcmmndtn>YES</MgmtRcmmndtn>
    </Rsltn>
    <Rsltn>
      <IssrLabl>1</IssrLabl>
      <Desc><Lang>en</Lang><Titl>Elect a director</Titl></Desc>
      <ForInfOnly>false</ForInfOnly>
      <VoteInstrTp><VoteInstrTpCd><Tp>MAYB</Tp></VoteInstrTpCd></VoteInstrTp>
    </Rsltn>
  </MtgNtfctn>
</Document>
"""


def test_a_malformed_notification_reports_every_fault_with_element_and_line():
    with pytest.raises(InvalidArgument) as caught:
        seev.meeting_from_seev001(MALFORMED, "bad.xml")
    found = {(v.field, v.description.split(":", 1)[0]) for v in caught.value.violations}
    assert found == {
        ("bad.xml:line 5", "/Document/MtgNtfctn/NtfctnGnlInf/NtfctnTp"),
        ("bad.xml:line 8", "/Document/MtgNtfctn/Mtg"),  # MtgId missing
        ("bad.xml:line 12", "/Document/MtgNtfctn/MtgDtls/DtAndTm/DtOrDtTm/Dt"),
        ("bad.xml:line 16", "/Document/MtgNtfctn/Scty/FinInstrmId/ISIN"),
        ("bad.xml:line 20", "/Document/MtgNtfctn/Rsltn[1]/ForInfOnly"),
        ("bad.xml:line 22", "/Document/MtgNtfctn/Rsltn[1]/MgmtRcmmndtn"),
        ("bad.xml:line 25", "/Document/MtgNtfctn/Rsltn[2]/IssrLabl"),  # duplicate
        ("bad.xml:line 24", "/Document/MtgNtfctn/Rsltn[2]"),  # Sts missing
        ("bad.xml:line 28", "/Document/MtgNtfctn/Rsltn[2]/VoteInstrTp/VoteInstrTpCd/Tp"),
    }
    text = str(caught.value)
    assert "<MtgId> is required" in text and "<Sts> is required" in text
    assert "'2025-02-30' is not an ISO date" in text and "duplicate IssrLabl '1'" in text


def test_another_version_or_message_is_refused_naming_the_one_read():
    other = MALFORMED.replace(b"seev.001.001.11", b"seev.001.001.09")
    with pytest.raises(InvalidArgument, match=r"this service reads seev\.001\.001\.11"):
        seev.meeting_from_seev001(other, "old.xml")
    with pytest.raises(InvalidArgument, match="not well-formed XML"):
        seev.meeting_from_seev001(b"<Document><MtgNtfctn>", "cut.xml")


NOTIFICATION_NAMING = """<Document xmlns="urn:iso:std:iso:20022:tech:xsd:seev.001.001.11">
  <MtgNtfctn>
    <Mtg><MtgId>X</MtgId><Tp>GMET</Tp></Mtg>
    <Issr><Id><NmAndAdr><Nm>{entity}</Nm></NmAndAdr></Id></Issr>
  </MtgNtfctn>
</Document>
"""
BILLION_LAUGHS = billion_laughs(NOTIFICATION_NAMING)
EXTERNAL_ENTITY = external_entity(NOTIFICATION_NAMING)


@pytest.mark.parametrize(
    "attack", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["billion-laughs", "external-entity"]
)
def test_entity_attacks_on_seev001_are_refused_without_expansion(attack):
    with pytest.raises(InvalidArgument) as caught:
        seev.meeting_from_seev001(attack, "attack.xml")
    (violation,) = caught.value.violations
    assert violation.field == "attack.xml:line 2"
    assert "entity declarations are refused" in violation.description
    assert "root:" not in str(caught.value) and "lollol" not in str(caught.value)


# --- seev.004 out and back: the round trip ---


# governance-baseline (CUST-EU-1 and CUST-JP-2) refers items 5 and 9: CUST-JP-2 holds no
# other policy, so nothing of it is instructed there; CUST-EU-1 instructs the rest.
REFERRED = {"governance-baseline": {"5", "9"}}


def test_seev001_to_plan_to_seev004_and_back_gives_the_plans_quantities(recommender):
    meeting = notification().meeting
    plan = plan_for(recommender, meeting, refer=REFERRED)
    assert plan.items[plan.item_ids.index("9")].referred_shares == Decimal("117")
    batch = seev.meeting_instructions(meeting, plan, "plan-0042", created=dt.datetime(2020, 5, 21, 12, 0))
    assert set(batch.messages) == {"CUST-EU-1", "CUST-US-7", "CUST-JP-2"}
    read = {c: seev.read_meeting_instruction(xml, f"{c}.xml") for c, xml in batch.messages.items()}
    # per custodian account: the sum over its accounts, per resolution and vote
    expected: dict[str, dict[str, dict[str, Decimal]]] = defaultdict(lambda: defaultdict(dict))
    for instruction in plan.instructions():
        if instruction.vote != REFER:
            per_vote = expected[instruction.custodian_account][instruction.item_id]
            per_vote[instruction.vote] = per_vote.get(instruction.vote, Decimal(0)) + instruction.shares
    for custodian, message in read.items():
        assert message.votes == {k: dict(v) for k, v in expected[custodian].items()}
        assert message.custodian_account == custodian and message.meeting_id == "AMZN-2020-AGM"
        assert message.isin == "US0231351067"
        assert (
            message.instruction_id
            == batch.instruction_ids[custodian]
            == seev.instruction_id("plan-0042", custodian)
        )
        assert message.plan_id == "plan-0042"
        assert message.decision_ids == {p: f"dec-{p}-0001" for p in POLICIES}
        assert message.instructed_balance == sum(
            (a.shares for a in plan.accounts if a.custodian_account == custodian), Decimal(0)
        )
        assert message.notes == ()
    # summed over custodian accounts: the plan's totals, per resolution and vote
    for item in plan.items:
        summed: dict[str, Decimal] = defaultdict(Decimal)
        for message in read.values():
            for vote, shares in message.votes.get(item.item_id, {}).items():
                summed[vote] += shares
        assert dict(summed) == dict(item.shares_by_vote), item.item_id
        referred = sum((n.shares for n in batch.not_instructed if n.item_id == item.item_id), Decimal(0))
        assert referred == item.referred_shares


def test_a_split_vote_and_exact_decimals_show_in_the_xml(recommender):
    meeting = notification().meeting
    plan = plan_for(recommender, meeting)
    batch = seev.meeting_instructions(meeting, plan, "plan-0042")
    root = etree.fromstring(batch.messages["CUST-US-7"])
    ns = {"s": seev.SEEV004_NS}
    (item6,) = root.xpath("//s:VoteInstr[s:IssrLabl='6']", namespaces=ns)
    voted = {etree.QName(e).localname: e.findtext("s:Qty/s:Unit", namespaces=ns) for e in item6[1:]}
    # board-aligned (999999999.875) against; human-rights-esg (1000000.125) for: one split instruction
    assert voted == {"For": "1000000.125", "Agnst": "999999999.875"}
    assert b"E+" not in batch.messages["CUST-US-7"] and b"e+" not in batch.messages["CUST-US-7"]
    assert len(batch.instruction_ids["CUST-US-7"]) <= 35


def test_referred_items_are_not_instructed_and_are_reported(recommender):
    meeting = notification().meeting
    plan = plan_for(recommender, meeting, refer=REFERRED)
    referred_items = [i for i in plan.items if i.referred_shares]
    assert [i.item_id for i in referred_items] == ["5", "9"]
    batch = seev.meeting_instructions(meeting, plan, "plan-0042")
    for item in referred_items:
        reported = [n for n in batch.not_instructed if n.item_id == item.item_id]
        assert sum((n.shares for n in reported), Decimal(0)) == item.referred_shares
        assert sum(n.accounts for n in reported) == item.referred_accounts
        for note in reported:
            message = seev.read_meeting_instruction(batch.messages[note.custodian_account], "x.xml")
            wholly = all(
                i.vote == REFER
                for i in plan.instructions()
                if i.item_id == item.item_id and i.custodian_account == note.custodian_account
            )
            assert (item.item_id not in message.votes) == wholly
    jp = seev.read_meeting_instruction(batch.messages["CUST-JP-2"], "jp.xml")
    assert "5" not in jp.votes and "9" not in jp.votes and "1a" in jp.votes
    assert {(n.custodian_account, n.item_id, n.shares) for n in batch.not_instructed} == {
        ("CUST-EU-1", "5", Decimal("75")),
        ("CUST-EU-1", "9", Decimal("75")),
        ("CUST-JP-2", "5", Decimal("42")),
        ("CUST-JP-2", "9", Decimal("42")),
    }


def test_instruction_ids_are_deterministic_and_follow_the_plan(recommender):
    meeting = notification().meeting
    plan = plan_for(recommender, meeting)
    first = seev.meeting_instructions(meeting, plan)
    again = seev.meeting_instructions(meeting, plan)
    assert first.messages == again.messages
    other = seev.meeting_instructions(meeting, plan, "another-plan")
    assert set(other.instruction_ids.values()).isdisjoint(first.instruction_ids.values())


def test_a_frequency_item_instructs_by_its_own_vote_elements(recommender):
    meeting = notification(SYNTHETIC).meeting
    positions = [
        AccountPosition("S-1", "board-aligned", Decimal("10"), True, "C-1"),
        AccountPosition("S-2", "human-rights-esg", Decimal("5.5"), True, "C-1"),
    ]
    plan = plan_for(recommender, meeting, positions)
    batch = seev.meeting_instructions(meeting, plan, "plan-syn")
    message = seev.read_meeting_instruction(batch.messages["C-1"], "c1.xml")
    for item in plan.items:
        assert message.votes.get(item.item_id, {}) == dict(item.shares_by_vote)


# --- N-PX out ---


def test_the_npx_vote_table_round_trips_through_the_npx_reader(recommender):
    amazon = notification().meeting
    synthetic = notification(SYNTHETIC).meeting
    pairs = [(amazon, plan_for(recommender, amazon, refer=REFERRED))]
    period = ReportingPeriod(2020)
    table = vote_table(period, pairs, series="S000000001")
    rows = npx.rows_from_xml(table.xml, "out.xml", "Fund", "test")
    plan = pairs[0][1]
    voted_items = [i for i in plan.items if i.shares_by_vote]
    assert table.rows == len(rows) == len(voted_items)
    titles = {i.item_id: i.title for i in amazon.items}
    for row, item in zip(rows, voted_items, strict=True):
        assert row.description == titles[item.item_id]
        assert (
            row.issuer_name == "Amazon.com, Inc." and row.cusip == "023135106" and row.isin == "US0231351067"
        )
        assert row.meeting_date == amazon.meeting_date
        lots = {lot.how_voted: lot.exact_shares for lot in row.lots}
        assert lots == dict(item.shares_by_vote)  # one lot per vote, exact shares
        assert row.shares_voted == sum((s for _, s in item.shares_by_vote), Decimal(0))
        assert {category_code(c) for c in row.categories} == set(item.categories or ("OTHER",))
        assert {lot.management for lot in row.lots} == {item.board_recommendation}
    # the rows also read back as one meeting with the fund's (largest-lot) votes
    meetings = npx.meetings_from_xml(table.xml, "out.xml", "Fund", "test").meetings
    assert len(meetings) == 1 and len(meetings[0].items) == len(voted_items)
    with pytest.raises(InvalidArgument, match="outside the reporting period 2019-07-01 to 2020-06-30"):
        vote_table(period, [(synthetic, plan_for(recommender, synthetic))])


def test_the_npx_table_refuses_a_malformed_series_id_and_carries_control_characters_as_spaces(recommender):
    amazon = notification().meeting
    odd = dataclasses.replace(
        amazon,
        items=(dataclasses.replace(amazon.items[0], title="Election of\x01Director\x0b"),) + amazon.items[1:],
    )
    pairs = [(odd, plan_for(recommender, odd))]
    with pytest.raises(InvalidArgument) as caught:
        vote_table(ReportingPeriod(2020), pairs, series="S12\x00")
    assert [v.field for v in caught.value.violations] == ["series"]
    table = vote_table(ReportingPeriod(2020), pairs, series="S000000001")
    rows = npx.rows_from_xml(table.xml, "out.xml", "Fund", "test")
    assert rows[0].description == "Election of Director"


def test_frequency_votes_are_written_as_the_npx_spelling(recommender):
    synthetic = notification(SYNTHETIC).meeting
    positions = [
        AccountPosition("S-1", "board-aligned", Decimal("10"), True, "C-1"),
        AccountPosition("S-2", "human-rights-esg", Decimal("5.5"), True, "C-1"),
    ]
    plan = plan_for(recommender, synthetic, positions)
    table = vote_table(ReportingPeriod.of(synthetic.meeting_date), [(synthetic, plan)])
    rows = npx.rows_from_xml(table.xml, "out.xml", "Fund", "test")
    by_title = {r.description: r for r in rows}
    totals = {t.item_id: t for t in plan.items}
    for item in synthetic.items:
        if totals[item.item_id].shares_by_vote:
            lots = {lot.how_voted: lot.exact_shares for lot in by_title[item.title].lots}
            assert lots == dict(totals[item.item_id].shares_by_vote)


def test_the_reporting_period_runs_from_july_to_june():
    period = ReportingPeriod(2025)
    assert (period.start, period.end) == (dt.date(2024, 7, 1), dt.date(2025, 6, 30))
    assert dt.date(2024, 7, 1) in period and dt.date(2025, 7, 1) not in period
    assert ReportingPeriod.of(dt.date(2025, 7, 1)).year == 2026
