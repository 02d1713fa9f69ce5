"""Past meetings into the store: identity and merge (core), N-PX files (wire), the repository, RPC and CLI.

Every fixture here is invented (issuers, wordings, filers); only the end-to-end
test at the bottom reads the shared real files, and skips without them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import grpc
import pytest
from proxyvote.app.meeting_import import MeetingImporter, SourceFile
from proxyvote.core.meetings import combine, meeting_key, merge_meetings, same_meeting
from proxyvote.core.model import BallotItem, InvestorVote, Issuer, ItemOutcome, Meeting
from proxyvote.errors import InvalidArgument
from proxyvote.store import SHARED, open_store
from proxyvote.wire.meeting_files import detect_format, read_meeting_file

from tests.conftest import EXAMPLES, TODAY, call, servicers_under_test
from tests.xml_attacks import billion_laughs, external_entity

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "npx"
NS = "http://www.sec.gov/edgar/document/npxproxy/informationtable"


# --- fixtures: invented issuers and wordings ---


def row_xml(
    issuer="GADGETRON HOLDINGS, INC.",
    cusip="11111A101",
    isin="US11111A1010",
    date="04/15/2025",
    description="Advisory vote on the pay of the named officers.",
    how="FOR",
    management="FOR",
    source="ISSUER",
    categories=("SECTION 14A SAY-ON-PAY VOTES",),
    lots=None,
    extra="",
) -> str:
    cats = "".join(
        f"<inf:voteCategory><inf:categoryType>{c}</inf:categoryType></inf:voteCategory>" for c in categories
    )
    lots = lots or [(how, 100, management)]
    records = "".join(
        f"<inf:voteRecord><inf:howVoted>{h}</inf:howVoted><inf:sharesVoted>{s}</inf:sharesVoted>"
        f"<inf:managementRecommendation>{m}</inf:managementRecommendation></inf:voteRecord>"
        for h, s, m in lots
    )
    return f"""
  <inf:proxyTable>
    <inf:issuerName>{issuer}</inf:issuerName>
    <inf:cusip>{cusip}</inf:cusip>
    <inf:isin>{isin}</inf:isin>
    <inf:meetingDate>{date}</inf:meetingDate>
    <inf:voteDescription>{description}</inf:voteDescription>
    <inf:voteCategories>{cats}</inf:voteCategories>
    <inf:voteSource>{source}</inf:voteSource>
    <inf:sharesVoted>100</inf:sharesVoted>
    <inf:sharesOnLoan>0</inf:sharesOnLoan>
    <inf:vote>{records}</inf:vote>{extra}
  </inf:proxyTable>"""


def table_xml(*rows: str) -> bytes:
    return f'<inf:proxyVoteTable xmlns:inf="{NS}">{"".join(rows)}\n</inf:proxyVoteTable>\n'.encode()


def jsonl(*records: dict) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def record(**overrides) -> dict:
    base = {
        "issuer_name": "Gadgetron Holdings, Inc.",
        "cusip": "11111A101",
        "isin": "US11111A1010",
        "meeting_date": "2025-04-15",
        "vote_description": "Advisory vote on the pay of the named officers.",
        "vote_source": "ISSUER",
        "categories": ["COMPENSATION"],
        "how_voted": "AGAINST",
        "management_recommendation": "FOR",
        "filer": "Harbour Index Fund",
        "accession": "0000000001-25-000001",
    }
    base.update(overrides)
    return base


def item(title, votes=(), board="NONE", **kw) -> BallotItem:
    return BallotItem(
        item_id=kw.pop("item_id", title[:8]),
        title=title,
        proponent_kind="MANAGEMENT",
        board_recommendation=board,
        investor_votes=tuple(votes),
        **kw,
    )


def meeting(items, issuer=None, date=dt.date(2025, 4, 15), **kw) -> Meeting:
    issuer = issuer or Issuer("Gadgetron Holdings, Inc.", isin="US11111A1010", cusip="11111A101")
    return Meeting(kw.pop("meeting_id", "GDG-2025"), issuer, date, tuple(items), **kw)


# --- core: identity and merge ---


def test_the_key_prefers_cusip_then_isin_figi_ticker_name():
    assert meeting_key(meeting([item("a")])) == "cusip:11111A101@2025-04-15"
    assert (
        meeting_key(meeting([item("a")], Issuer("G", isin=" us11111a1010 ")))
        == "isin:US11111A1010@2025-04-15"
    )
    assert (
        meeting_key(meeting([item("a")], Issuer("G", figi="BBG000X", isin="N/A")))
        == "figi:BBG000X@2025-04-15"
    )
    assert meeting_key(meeting([item("a")], Issuer("G", ticker="gdg"))) == "ticker:GDG@2025-04-15"
    assert (
        meeting_key(meeting([item("a")], Issuer("  Gadgetron\nHoldings ")))
        == "name:gadgetron holdings@2025-04-15"
    )


def test_records_sharing_any_identifier_on_the_same_date_are_one_meeting():
    by_isin = meeting([item("a")], Issuer("G", isin="US11111A1010"))
    by_both = meeting([item("a")])
    assert same_meeting(by_isin, by_both)
    assert not same_meeting(by_isin, dataclasses.replace(by_both, meeting_date=dt.date(2025, 4, 16)))
    assert len(combine([by_isin, by_both])) == 1


def test_merge_matches_items_by_wording_unions_votes_and_fills_what_is_missing():
    fund_a = InvestorVote("Fund A", "FOR", "acc-1")
    fund_b = InvestorVote("Fund B", "AGAINST", "acc-2")
    ours = meeting(
        [item("Ratify the auditor", item_id="2", outcome=ItemOutcome(passed=True), board="FOR")],
        provenance="proxy statement",
    )
    filing_a = meeting([item("ratify  THE auditor", [fund_a], board="AGAINST", sources=("npx-category:X",))])
    filing_b = meeting(
        [item("Ratify the auditor", [fund_b]), item("Elect a director", [fund_b], board="FOR")]
    )
    merged = merge_meetings(merge_meetings(ours, filing_a), filing_b)
    first, second = merged.items
    assert first.item_id == "2" and first.outcome == ItemOutcome(passed=True)
    assert first.board_recommendation == "FOR"  # ours kept: the filer's fills only a missing one
    assert first.investor_votes == (fund_a, fund_b)
    assert first.sources == ("npx-category:X",)
    assert second.title == "Elect a director" and second.board_recommendation == "FOR"
    # Idempotent: merging any piece again changes nothing.
    assert merge_meetings(merged, filing_a) == merged
    assert merge_meetings(merged, merged) == merged
    assert merge_meetings(merged, filing_b) == merged


def test_a_repeated_wording_within_one_record_stays_two_items():
    twice = meeting(
        [
            item("Elect nominee", [InvestorVote("F", "FOR")], item_id="x1"),
            item("Elect nominee", [InvestorVote("F", "AGAINST")], item_id="x2"),
        ]
    )
    other = meeting(
        [
            item("Elect nominee", [InvestorVote("G", "FOR")], item_id="y1"),
            item("Elect nominee", [InvestorVote("G", "FOR")], item_id="y2"),
        ]
    )
    merged = merge_meetings(twice, other)
    assert [len(i.investor_votes) for i in merged.items] == [2, 2]
    assert merged.items[1].investor_votes == (InvestorVote("F", "AGAINST"), InvestorVote("G", "FOR"))


# --- wire: N-PX XML ---


def test_an_xml_vote_table_becomes_meetings_with_the_filers_votes():
    data = table_xml(
        row_xml(),
        row_xml(
            description="Approve an amendment to the equity plan.",
            how="AGAINST",
            categories=("COMPENSATION",),
        ),
        row_xml(
            description="Report on the supply chain.",
            how="FOR",
            management="AGAINST",
            source="SECURITY HOLDER",
            categories=("HUMAN RIGHTS OR HUMAN CAPITAL/WORKFORCE",),
        ),
        row_xml(description="Frequency of the pay vote.", how="1 YEAR", management="FOR"),
        row_xml(issuer="WIDGETCO PLC", cusip="N/A", isin="GB0000000002", date="05/02/2025", how="WITHHOLD"),
    )
    f = read_meeting_file("/tmp/harbour.xml", data, filer="Harbour Fund", source="0000000009-25-000009")
    assert f.format == "npx-xml" and f.rows == 5
    gadgetron, widgetco = f.meetings
    assert gadgetron.meeting_date == dt.date(2025, 4, 15) and gadgetron.issuer.cusip == "11111A101"
    assert widgetco.issuer.cusip == "" and meeting_key(widgetco) == "isin:GB0000000002@2025-05-02"
    pay, plan, report, frequency = gadgetron.items
    assert pay.investor_votes == (InvestorVote("Harbour Fund", "FOR", "0000000009-25-000009"),)
    assert plan.investor_votes[0].vote == "AGAINST" and plan.board_recommendation == "FOR"
    assert report.proponent_kind == "SHAREHOLDER" and report.board_recommendation == "AGAINST"
    # A FOR "recommendation" on a frequency vote says nothing: dropped.
    assert frequency.investor_votes[0].vote == "ONE_YEAR" and frequency.board_recommendation == "NONE"
    # The filer's categories stay inert: never a caller category (which would override the classifier).
    assert all(i.category is None for i in gadgetron.items)
    assert report.sources == ("npx-category:HUMAN RIGHTS OR HUMAN CAPITAL/WORKFORCE",)
    assert widgetco.items[0].investor_votes[0].vote == "WITHHOLD"


def test_the_lot_with_the_most_shares_gives_the_funds_vote():
    data = table_xml(row_xml(lots=[("FOR", 10, "FOR"), ("AGAINST", 90, "FOR"), ("ABSTAIN", 90, "FOR")]))
    (m,) = read_meeting_file("t.xml", data, filer="F").meetings
    assert [v.vote for v in m.items[0].investor_votes] == ["AGAINST"]


def test_without_a_filer_the_vote_table_is_named_by_its_file():
    (m,) = read_meeting_file("/data/harbour-2025.xml", table_xml(row_xml())).meetings
    assert m.items[0].investor_votes == (InvestorVote("harbour-2025", "FOR", "harbour-2025.xml"),)


def test_an_unknown_vote_is_rejected_naming_the_element_and_its_line():
    data = table_xml(row_xml(), row_xml(how="MAYBE"), row_xml(management="PERHAPS"))
    with pytest.raises(InvalidArgument) as caught:
        read_meeting_file("bad.xml", data, filer="F")
    fields = [(v.field, v.description) for v in caught.value.violations]
    assert len(fields) == 2
    lines = data.decode().splitlines()
    (field, description), (field2, description2) = fields
    assert "<howVoted>" in description and "'MAYBE'" in description
    assert "MAYBE" in lines[int(field.rsplit(" ", 1)[1]) - 1] and field.startswith("bad.xml:line ")
    assert "<managementRecommendation>" in description2
    assert "PERHAPS" in lines[int(field2.rsplit(" ", 1)[1]) - 1]


def test_missing_and_malformed_elements_are_named():
    data = table_xml(row_xml(date="2025/13/45"), row_xml(description=""))
    with pytest.raises(InvalidArgument) as caught:
        read_meeting_file("bad.xml", data, filer="F")
    descriptions = " | ".join(v.description for v in caught.value.violations)
    assert "<meetingDate>" in descriptions and "<voteDescription> is required" in descriptions
    with pytest.raises(InvalidArgument, match="not well-formed XML"):
        read_meeting_file(
            "broken.xml", b'<inf:proxyVoteTable xmlns:inf="' + NS.encode() + b'"><inf:proxyTable>'
        )
    with pytest.raises(InvalidArgument, match="cover document"):
        read_meeting_file("cover.xml", b'<edgarSubmission xmlns="http://www.sec.gov/edgar/npx"/>')
    with pytest.raises(InvalidArgument, match="not an N-PX proxyVoteTable"):
        read_meeting_file("other.xml", b"<proxyVoteTable/>")


VOTE_TABLE_NAMING = """<inf:proxyVoteTable xmlns:inf="http://www.sec.gov/edgar/document/npxproxy/informationtable">
  <inf:proxyTable>
    <inf:issuerName>{entity}</inf:issuerName>
    <inf:cusip>11111A101</inf:cusip>
    <inf:meetingDate>04/15/2025</inf:meetingDate>
    <inf:voteDescription>{entity}</inf:voteDescription>
    <inf:vote><inf:voteRecord><inf:howVoted>FOR</inf:howVoted></inf:voteRecord></inf:vote>
  </inf:proxyTable>
</inf:proxyVoteTable>
"""
BILLION_LAUGHS = billion_laughs(VOTE_TABLE_NAMING)
EXTERNAL_ENTITY = external_entity(VOTE_TABLE_NAMING)


@pytest.mark.parametrize(
    "attack", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["billion-laughs", "external-entity"]
)
def test_entity_attacks_are_refused_before_parsing(attack):
    with pytest.raises(InvalidArgument) as caught:
        read_meeting_file("attack.xml", attack, filer="F")
    (violation,) = caught.value.violations
    assert violation.field == "attack.xml:line 2"
    assert "entity declarations are refused" in violation.description
    assert "root:" not in str(caught.value)  # nothing of /etc/passwd


def test_the_parser_itself_never_expands_an_entity_nor_fetches_one():
    from proxyvote.wire import npx

    parser = npx._parser()
    from lxml import etree

    root = etree.fromstring(EXTERNAL_ENTITY, parser)
    assert "root:" not in etree.tostring(root).decode()
    with pytest.raises(InvalidArgument, match="DOCTYPE is refused"):
        npx.parse_xml(b'<?xml version="1.0"?>\n<!DOCTYPE t SYSTEM "http://127.0.0.1:9/t.dtd">\n<t/>', "x.xml")


def test_attack_files_store_nothing(tmp_path):
    store = _sqlite_store(tmp_path)
    importer = MeetingImporter(store.meetings)
    good = SourceFile("good.xml", table_xml(row_xml()), "F")
    for attack in (BILLION_LAUGHS, EXTERNAL_ENTITY):
        with pytest.raises(InvalidArgument):
            importer.import_files(SHARED, [good, SourceFile("attack.xml", attack, "F")])
    assert store.meetings.count((SHARED,)) == 0
    store.close()


def test_the_sec_template_parses_with_every_element():
    path = SHARED_DATA / "ProxyVoteTable.xml"
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared folder sits beside the checkout)")
    f = read_meeting_file(str(path), path.read_bytes(), filer="Template")
    ((m,),) = [f.meetings]
    assert m.issuer.figi == "1" and m.issuer.isin == ""  # "N/A" is no identifier
    (only,) = m.items
    assert only.investor_votes[0].investor == "Template (series s888895895)"
    assert only.investor_votes[0].vote == "WITHHOLD" and only.text == "otherVoteDescription"


# --- wire: JSON lines and format detection ---


def test_json_lines_become_meetings_and_a_row_without_a_vote_is_listed_as_skipped():
    data = jsonl(
        record(),
        record(filer="Tidewater Trust", accession="0000000002-25-000002", isin=None, how_voted="FOR"),
        record(
            vote_description="Report on water use.",
            vote_source="SECURITY HOLDER",
            how_voted=None,
            management_recommendation=None,
        ),
        record(
            cusip="22222B202",
            isin="US22222B2020",
            issuer_name="Widgetco",
            how_voted="1 YEAR",
            management_recommendation="1 YEAR",
        ),
    )
    f = read_meeting_file("funds.jsonl", data)
    assert f.format == "npx-jsonl" and f.rows == 4
    gadgetron, widgetco = f.meetings
    pay, water = gadgetron.items
    assert [(v.investor, v.vote, v.source) for v in pay.investor_votes] == [
        ("Harbour Index Fund", "AGAINST", "0000000001-25-000001"),
        ("Tidewater Trust", "FOR", "0000000002-25-000002"),
    ]
    assert water.proponent_kind == "SHAREHOLDER" and water.investor_votes == ()
    assert f.skipped == (
        (
            "cusip:11111A101@2025-04-15",
            "funds.jsonl:line 3: no vote reported by Harbour Index Fund; item kept without it",
        ),
    )
    assert widgetco.items[0].board_recommendation == "ONE_YEAR"


def test_a_bad_json_line_is_rejected_with_its_number():
    data = (
        jsonl(record(), record(how_voted="SOMETIMES"))
        + b"{not json\n"
        + jsonl(record(meeting_date="15/04/2025"))
    )
    with pytest.raises(InvalidArgument) as caught:
        read_meeting_file("funds.jsonl", data)
    fields = [v.field for v in caught.value.violations]
    assert fields == ["funds.jsonl:line 2", "funds.jsonl:line 3", "funds.jsonl:line 4"]
    assert "how_voted" in caught.value.violations[0].description


def test_formats_are_detected_by_content():
    assert detect_format("x.txt", table_xml(row_xml())) == "npx-xml"
    assert detect_format("x.json", jsonl(record())) == "npx-jsonl"
    assert detect_format("x", (EXAMPLES / "meetings" / "amazon-2019-agm.json").read_bytes()) == "meeting"
    with pytest.raises(InvalidArgument):
        detect_format("x.csv", b"a,b\n")


# --- the store ---


def _sqlite_store(tmp_path):
    from proxyvote.store.schema import upgrade

    url = f"sqlite:///{tmp_path / 'meetings.db'}"
    upgrade(url)
    return open_store(url)


def _our_meeting_bytes() -> bytes:
    """An invented meeting in our JSON, with an outcome and advisers."""
    return json.dumps(
        {
            "meeting_id": "GDG-2025-AGM",
            "issuer": {"name": "Gadgetron Holdings, Inc.", "ticker": "GDG", "cusip": "11111A101"},
            "meeting_type": "ANNUAL",
            "meeting_date": "2025-04-15",
            "items": [
                {
                    "item_id": "3",
                    "number": "3",
                    "title": "Advisory vote on the pay of the named officers",
                    "proponent": {"kind": "MANAGEMENT"},
                    "board_recommendation": "FOR",
                    "outcome": {"passed": True, "support_pct": 88.0},
                    "adviser_recommendations": [{"adviser": "Adviser One", "vote": "FOR"}],
                }
            ],
        }
    ).encode()


def test_imports_are_idempotent_merge_other_filers_and_select_by_date_and_issuer(database_url):
    store = open_store(database_url)
    try:
        importer = MeetingImporter(store.meetings)
        ours = SourceFile("gdg.json", _our_meeting_bytes())
        harbour = SourceFile(
            "harbour.xml",
            table_xml(
                row_xml(description="Advisory vote on the pay of the named officers."),
                row_xml(issuer="WIDGETCO PLC", cusip="", isin="GB0000000002", date="05/02/2025"),
            ),
            "Harbour Fund",
            "acc-h",
        )
        tide = SourceFile(
            "tide.jsonl",
            jsonl(
                record(
                    cusip=None,
                    filer="Tidewater Trust",
                    accession="acc-t",
                    vote_description="advisory vote on the pay of the named officers",
                )
            ),
        )

        first = importer.import_files(SHARED, [ours]).summary
        assert (first.imported, first.merged, first.unchanged) == (1, 0, 0)
        second = importer.import_files(SHARED, [harbour]).summary
        assert (second.imported, second.merged, second.unchanged) == (1, 1, 0)
        again = importer.import_files(SHARED, [ours, harbour]).summary
        assert (again.imported, again.merged, again.unchanged) == (0, 0, 2)
        # Named by ISIN only, on the same date: found through the ISIN column and merged.
        third = importer.import_files(SHARED, [tide]).summary
        assert (third.imported, third.merged, third.unchanged) == (0, 1, 0)
        assert importer.import_files(SHARED, [tide]).summary.unchanged == 1

        meetings = store.meetings.select((SHARED,))
        assert [meeting_key(m) for m in meetings] == [
            "cusip:11111A101@2025-04-15",
            "isin:GB0000000002@2025-05-02",
        ]
        gdg = meetings[0]
        assert gdg.meeting_id == "GDG-2025-AGM" and gdg.issuer.isin == "US11111A1010"
        (pay,) = gdg.items  # one item: the three wordings are the same, case, spacing and "." aside
        assert pay.outcome.support_pct == 88.0 and pay.board_recommendation == "FOR"
        assert {(v.investor, v.vote) for v in pay.investor_votes} == {
            ("Harbour Fund", "FOR"),
            ("Tidewater Trust", "AGAINST"),
        }
        assert store.meetings.count((SHARED,)) == 2
        assert [m.meeting_id for m in store.meetings.select((SHARED,), issuer="gdg")] == ["GDG-2025-AGM"]
        assert len(store.meetings.select((SHARED,), issuer="widgetco plc")) == 1
        assert len(store.meetings.select((SHARED,), issuer="GB0000000002")) == 1
        assert len(store.meetings.select((SHARED,), date_from=dt.date(2025, 4, 16))) == 1
        assert len(store.meetings.select((SHARED,), date_to=dt.date(2025, 4, 15))) == 1
        assert store.meetings.count((SHARED,), date_from=dt.date(2025, 6, 1)) == 0
        assert store.meetings.select(("someone-else",)) == []
        assert len(store.meetings.select((SHARED,), offset=1, limit=5)) == 1
    finally:
        store.close()


def test_a_bad_file_rejects_the_whole_import(database_url):
    store = open_store(database_url)
    try:
        importer = MeetingImporter(store.meetings)
        good = SourceFile("good.xml", table_xml(row_xml()), "F")
        bad = SourceFile("bad.jsonl", jsonl(record(), record(how_voted="LOUDLY")))
        with pytest.raises(InvalidArgument, match="bad.jsonl:line 2"):
            importer.import_files(SHARED, [good, bad])
        assert store.meetings.count((SHARED,)) == 0
    finally:
        store.close()


def test_a_tenants_meetings_are_its_own_and_merged_with_the_shared_ones(tmp_path):
    store = _sqlite_store(tmp_path)
    importer = MeetingImporter(store.meetings)
    importer.import_files(SHARED, [SourceFile("a.xml", table_xml(row_xml()), "Shared Fund")])
    importer.import_files("t1", [SourceFile("b.xml", table_xml(row_xml(how="AGAINST")), "Own Fund")])
    (seen,), total = importer.select("t1")
    assert total == 1
    assert [v.investor for v in seen.items[0].investor_votes] == ["Own Fund", "Shared Fund"]
    assert [v.investor for v in importer.select("t2")[0][0].items[0].investor_votes] == ["Shared Fund"]
    store.close()


# --- RPC and CLI ---


def test_the_rpc_imports_for_the_tenant_and_lists_in_pages(sqlite_app):
    from proxyvote.v1 import meeting_service_pb2 as ms

    _, key = sqlite_app.store.tenants.create("importer")
    server = servicers_under_test(sqlite_app)
    rows = [row_xml(cusip=f"3333{n}C303", isin="", date=f"05/{n + 1:02d}/2025") for n in range(5)]
    request = ms.ImportMeetingsRequest(
        files=[ms.MeetingFile(name="f.xml", content=table_xml(*rows), filer="F")]
    )
    reply, code, _, _ = call(server, "MeetingService/ImportMeetings", request, key)
    assert code.name == "OK" and (reply.imported, reply.merged, reply.unchanged) == (5, 0, 0)
    assert reply.files[0].format == "npx-xml" and reply.files[0].investor_votes == 5
    reply, _, _, _ = call(server, "MeetingService/ImportMeetings", request, key)
    assert (reply.imported, reply.unchanged) == (0, 5)

    keys, token = [], ""
    while True:
        page, code, _, _ = call(
            server, "MeetingService/ListMeetings", ms.ListMeetingsRequest(page_size=2, page_token=token), key
        )
        assert code.name == "OK" and page.total_size == 5
        keys += [m.meeting_date for m in page.meetings]
        token = page.next_page_token
        if not token:
            break
    assert keys == sorted(keys) and len(keys) == 5
    page, _, _, _ = call(
        server, "MeetingService/ListMeetings", ms.ListMeetingsRequest(date_from="2025-05-04", issuer=""), key
    )
    assert [m.meeting_date for m in page.meetings] == ["2025-05-04", "2025-05-05"]
    # The tenant's own: another tenant sees none of them.
    _, other = sqlite_app.store.tenants.create("other")
    page, _, _, _ = call(server, "MeetingService/ListMeetings", ms.ListMeetingsRequest(), other)
    assert page.total_size == 0
    assert TODAY  # the servicers are built with the tests' clock


def test_the_rpc_names_the_line_of_a_bad_file(sqlite_app):
    from google.rpc import status_pb2
    from proxyvote.v1 import meeting_service_pb2 as ms

    from tests.conftest import bad_request

    _, key = sqlite_app.store.tenants.create("importer")
    server = servicers_under_test(sqlite_app)
    request = ms.ImportMeetingsRequest(
        files=[ms.MeetingFile(name="f.jsonl", content=jsonl(record(), record(how_voted="X")))]
    )
    _, code, _, trailing = call(server, "MeetingService/ImportMeetings", request, key)
    assert code.name == "INVALID_ARGUMENT"
    status = status_pb2.Status.FromString(trailing["grpc-status-details-bin"])
    (violation,) = bad_request(status).field_violations
    assert violation.field == "f.jsonl:line 2" and "how_voted" in violation.description
    _, code, _, _ = call(server, "MeetingService/ImportMeetings", ms.ImportMeetingsRequest(), key)
    assert code.name == "INVALID_ARGUMENT"


def test_the_cli_imports_into_the_shared_set_and_prints_the_summary(tmp_path, capsys):
    from proxyvote.cli.main import main
    from proxyvote.store.schema import upgrade

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    xml = tmp_path / "harbour.xml"
    xml.write_bytes(table_xml(row_xml(), row_xml(description="Ratify the auditor.")))
    lines = tmp_path / "tide.jsonl"
    lines.write_bytes(jsonl(record(how_voted=None)))
    env = {"DATABASE_URL": url}
    assert main(["meetings", "import", str(xml), str(lines), "--filer", "Harbour Fund"], env) == 0
    out = capsys.readouterr().out
    assert "2 record(s): 1 meeting(s), 2 item(s), 2 investor vote(s)" in out
    assert "imported 1, merged 0, unchanged 0 (shared set)" in out
    assert "skipped 1:" in out and "tide.jsonl:line 1: no vote reported" in out
    assert (
        main(["meetings", "import", str(xml), str(lines), "--filer", "Harbour Fund", "--format", "json"], env)
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert (summary["imported"], summary["merged"], summary["unchanged"]) == (0, 0, 1)
    assert main(["meetings", "list", "--issuer", "11111a101"], env) == 0
    assert "1 meeting(s)" in capsys.readouterr().out
    bad = tmp_path / "bad.xml"
    bad.write_bytes(EXTERNAL_ENTITY)
    assert main(["meetings", "import", str(bad)], env) == 2
    assert "entity declarations are refused" in capsys.readouterr().err


# --- end to end over the shared real files ---


def test_the_shared_npx_files_import_with_their_votes(tmp_path):
    kim, dev = SHARED_DATA / "KIM_LLC_proxy_votes.xml", SHARED_DATA / "records-dev.jsonl"
    if not (kim.exists() and dev.exists()):
        pytest.skip(f"{SHARED_DATA} is absent (the shared folder sits beside the checkout)")
    store = _sqlite_store(tmp_path)
    importer = MeetingImporter(store.meetings)
    files = [SourceFile(str(kim), kim.read_bytes(), "KIM, LLC"), SourceFile(str(dev), dev.read_bytes())]
    report = importer.import_files(SHARED, files)
    assert [(f.rows, f.meetings, f.items, f.investor_votes) for f in report.files] == [
        (7, 6, 7, 7),
        (374, 159, 374, 349),
    ]
    assert (report.summary.imported, report.summary.merged) == (165, 0)
    assert len(report.summary.skipped) == 25  # rows with no vote reported
    again = importer.import_files(SHARED, files).summary
    assert (again.imported, again.merged, again.unchanged) == (0, 0, 165)
    meetings = store.meetings.select((SHARED,))
    investors = {v.investor for m in meetings for i in m.items for v in i.investor_votes}
    assert "KIM, LLC" in investors and len(investors) == 4
    assert all(i.category is None for m in meetings for i in m.items)
    store.close()


def test_a_stored_body_reads_back_as_the_validating_converter_reads_it():
    from proxyvote.core.model import AdviserRecommendation, CallerCategory
    from proxyvote.store.meetings import encode
    from proxyvote.v1 import meeting_pb2
    from proxyvote.wire import convert
    from proxyvote.wire.meeting_files import meeting_from_body

    full = meeting(
        [
            item(
                "Everything set",
                [InvestorVote("F", "THREE_YEARS", "s")],
                board="AGAINST",
                item_id="1",
                number="1a",
                text="RESOLVED",
                proponent_name="A holder",
                vote_options=("FOR", "AGAINST"),
                category=CallerCategory("OTHER", "t"),
                outcome=ItemOutcome(False, 12.5, "basis", 1, 2, 0, 4),
                adviser_recommendations=(AdviserRecommendation("Adviser One", "AGAINST"),),
                sources=("https://example.org/x",),
            ),
            item("Bare", item_id="2"),
        ],
        Issuer("G", "GDG", "US11111A1010", "11111A101", "US", "BBG000X"),
        meeting_type="ANNUAL",
        record_date=dt.date(2025, 3, 1),
        provenance="invented",
    )
    examples = [
        read_meeting_file(p.name, p.read_bytes()).meetings[0] for p in (EXAMPLES / "meetings").glob("*.json")
    ]
    npx_meetings = list(
        read_meeting_file("t.xml", table_xml(row_xml(), row_xml(how="2 YEARS")), "F").meetings
    )
    for m in [full, *examples, *npx_meetings]:
        body, _ = encode(m)
        assert (
            meeting_from_body(body) == m == convert.meeting_from_proto(meeting_pb2.Meeting.FromString(body))
        )


def test_a_record_naming_two_stored_meetings_by_two_identifiers_merges_them_into_one(database_url):
    store = open_store(database_url)
    try:
        importer = MeetingImporter(store.meetings)
        by_isin = SourceFile("a.xml", table_xml(row_xml(cusip="", how="FOR")), "Fund A")
        by_cusip = SourceFile("b.xml", table_xml(row_xml(isin="", how="AGAINST")), "Fund B")
        both = SourceFile("c.xml", table_xml(row_xml(how="ABSTAIN")), "Fund C")
        assert importer.import_files(SHARED, [by_isin]).summary.imported == 1
        assert importer.import_files(SHARED, [by_cusip]).summary.imported == 1
        assert store.meetings.count((SHARED,)) == 2
        summary = importer.import_files(SHARED, [both]).summary
        assert (summary.imported, summary.merged, summary.unchanged) == (0, 1, 0)
        (merged,) = store.meetings.select((SHARED,))
        assert meeting_key(merged) == "cusip:11111A101@2025-04-15"
        assert [v.investor for v in merged.items[0].investor_votes] == ["Fund A", "Fund B", "Fund C"]
        again = importer.import_files(SHARED, [by_isin, by_cusip, both]).summary
        assert (again.imported, again.merged, again.unchanged) == (0, 0, 1)
    finally:
        store.close()


@pytest.mark.parametrize(
    "name, content",
    [
        ("a.json", b"[" * 100_000 + b"]" * 100_000),
        ("b.json", b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
        ("c.jsonl", b'{"vote_description":' * 100_000),
        ("d.json", b'[{"meeting_id": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]"),
    ],
)
def test_json_nested_too_deeply_is_refused_naming_the_file(name, content):
    # Found by tests/test_fuzz.py: json recursed past Python's limit (RecursionError: INTERNAL).
    with pytest.raises(InvalidArgument) as caught:
        read_meeting_file(name, content)
    assert [v.field.split(":")[0] for v in caught.value.violations] == [name]


@pytest.mark.parametrize("issuer", [{"name": "N" * 3000}, {"name": "Amazon.com, Inc.", "cusip": "9" * 400}])
def test_a_meeting_whose_key_is_longer_than_its_column_imports(app, issuer):
    # Found while fuzzing: the meeting key (issuer code or name, and the date) past the store's
    # 300-character column was a DataError answered INTERNAL on PostgreSQL.
    from proxyvote.v1 import meeting_service_pb2 as ms

    _, key = app.store.tenants.create("long-keys")
    meeting = json.loads((EXAMPLES / "meetings" / "amazon-2019-agm.json").read_text())
    meeting["issuer"] = issuer
    request = ms.ImportMeetingsRequest(
        files=[ms.MeetingFile(name="m.json", content=json.dumps(meeting).encode())]
    )
    _, code, details, _ = call(servicers_under_test(app), "MeetingService/ImportMeetings", request, key)
    assert code is grpc.StatusCode.OK, details
    again = call(servicers_under_test(app), "MeetingService/ImportMeetings", request, key)[0]
    assert again.unchanged == 1  # the bounded key still finds the stored meeting
