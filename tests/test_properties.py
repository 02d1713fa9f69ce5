"""Properties over generated ballots: one decision per item, determinism, only clean errors."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from proxyvote.errors import ProxyvoteError
from proxyvote.v1 import enums_pb2, evidence_pb2, meeting_pb2
from proxyvote.v1 import recommendation_service_pb2 as rs

from .conftest import TODAY, recommend

POLICIES = ["human-rights-esg", "board-aligned", "governance-baseline"]
WORDS = [
    "report",
    "on",
    "human",
    "rights",
    "facial",
    "recognition",
    "prohibit",
    "sales",
    "elect",
    "director",
    "climate",
    "lobbying",
    "independent",
    "chair",
    "due",
    "diligence",
    "customer",
    "special",
    "meeting",
    "pay",
    "gap",
    "ratify",
    "auditors",
    "plastic",
    "net",
    "zero",
    "audit",
    "racial",
    "equity",
    "say",
    "frequency",
    "abandon",
    "DEI",
    "study",
    "surveillance",
    "Ã©",
    "|",
    "<script>",
    "*",
    "#",
]
SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

titles = st.lists(st.sampled_from(WORDS), min_size=1, max_size=14).map(" ".join)
votes = st.sampled_from(enums_pb2.Vote.values())
proponents = st.sampled_from([enums_pb2.MANAGEMENT, enums_pb2.SHAREHOLDER])
dates = st.dates().map(lambda d: d.isoformat()) | st.sampled_from(["", "2020-02-30", "2020-5-1", "x"])


@st.composite
def valid_items(draw):
    count = draw(st.integers(min_value=1, max_value=12))
    return [
        meeting_pb2.BallotItem(
            item_id=f"i{n}",
            title=draw(titles),
            proponent=meeting_pb2.Proponent(kind=draw(proponents)),
            board_recommendation=draw(
                st.sampled_from(
                    [
                        enums_pb2.FOR,
                        enums_pb2.AGAINST,
                        enums_pb2.NONE,
                        enums_pb2.ONE_YEAR,
                        enums_pb2.THREE_YEARS,
                    ]
                )
            ),
        )
        for n in range(count)
    ]


def valid_meeting(items) -> meeting_pb2.Meeting:
    return meeting_pb2.Meeting(
        meeting_id="GEN-1",
        issuer=meeting_pb2.Issuer(name="Generated Inc.", ticker="GEN"),
        meeting_date="2024-05-01",
        items=items,
    )


evidence_records = st.lists(
    st.builds(
        evidence_pb2.EvidenceRecord,
        evidence_id=st.text(min_size=1, max_size=8),
        issuer=st.just(evidence_pb2.EvidenceIssuer(name="Generated Inc.", ticker="GEN")),
        published=st.dates().map(lambda d: d.isoformat()),
        topics=st.lists(st.sampled_from(["facial_recognition", "human_rights", "privacy", "x"]), max_size=3),
        kind=st.sampled_from(enums_pb2.EvidenceKind.values()[1:]),
        status=st.sampled_from(enums_pb2.EvidenceStatus.values()),
    ),
    max_size=6,
)


@SETTINGS
@given(items=valid_items(), policy=st.sampled_from(POLICIES), evidence=evidence_records)
def test_every_item_gets_exactly_one_decision(recommender, items, policy, evidence):
    request = rs.RecommendRequest(
        meeting=valid_meeting(items), policy=policy, as_of="2024-04-01", evidence=evidence
    )
    try:
        response = recommend(recommender, request, TODAY)
    except ProxyvoteError:
        # Generated evidence may be invalid (e.g. an empty id); the meeting never is.
        assert any(not e.evidence_id.strip() for e in evidence)
        return
    assert [r.item_id for r in response.recommendations] == [i.item_id for i in items]
    for r in response.recommendations:
        assert r.rule_id and r.vote != enums_pb2.VOTE_UNSPECIFIED
        assert r.needs_review == (r.vote == enums_pb2.REFER or r.classification.source == 3)


@SETTINGS
@given(items=valid_items(), policy=st.sampled_from(POLICIES))
def test_the_same_input_gives_byte_identical_output(recommender, items, policy):
    request = rs.RecommendRequest(meeting=valid_meeting(items), policy=policy, as_of="2024-04-01")
    first = recommend(recommender, request, TODAY).SerializeToString(deterministic=True)
    again = recommend(recommender, rs.RecommendRequest.FromString(request.SerializeToString()), TODAY)
    assert again.SerializeToString(deterministic=True) == first


@st.composite
def hostile_items(draw):
    return meeting_pb2.BallotItem(
        item_id=draw(st.text(max_size=6)),
        number=draw(st.text(max_size=4)),
        title=draw(st.text(max_size=80) | titles),
        text=draw(st.text(max_size=200)),
        proponent=meeting_pb2.Proponent(
            kind=draw(st.sampled_from(enums_pb2.ProponentKind.values())), name=draw(st.text(max_size=20))
        ),
        board_recommendation=draw(votes),
        vote_options=draw(st.lists(votes, max_size=4)),
        category=draw(
            st.none()
            | st.builds(
                meeting_pb2.Category,
                npx_category=st.sampled_from(enums_pb2.NpxCategory.values()),
                topic=st.text(max_size=10),
            )
        ),
    )


@SETTINGS
@given(
    meeting_id=st.text(max_size=10),
    issuer=st.none() | st.builds(meeting_pb2.Issuer, name=st.text(max_size=10), ticker=st.text(max_size=5)),
    meeting_date=dates,
    items=st.lists(hostile_items(), max_size=6),
    policy=st.sampled_from(POLICIES + ["", "nope", "human-rights-esg@0", "x@y", "@", "policies/"])
    | st.text(max_size=12),
    as_of=dates,
    evidence=evidence_records,
)
def test_no_generated_request_raises_anything_but_a_domain_error(
    recommender, meeting_id, issuer, meeting_date, items, policy, as_of, evidence
):
    meeting = meeting_pb2.Meeting(meeting_id=meeting_id, meeting_date=meeting_date, items=items)
    if issuer is not None:
        meeting.issuer.CopyFrom(issuer)
    request = rs.RecommendRequest(meeting=meeting, policy=policy, as_of=as_of, evidence=evidence)
    try:
        response = recommend(recommender, request, TODAY)
    except ProxyvoteError:
        return
    assert len(response.recommendations) == len(items)


@SETTINGS
@given(items=valid_items())
def test_cached_classification_equals_classifying_afresh(recommender, items):
    from proxyvote.core.classify import classify
    from proxyvote.wire import convert

    meeting = convert.meeting_from_proto(valid_meeting(items))
    for item in meeting.items:
        assert recommender.classify(item) == classify(item, recommender.taxonomy)


@SETTINGS
@given(
    board=st.integers(min_value=-5, max_value=200),
    kind=st.integers(min_value=-5, max_value=50),
    npx=st.integers(min_value=-5, max_value=50),
)
def test_enum_numbers_this_build_does_not_know_are_invalid_arguments(recommender, board, kind, npx):
    item = meeting_pb2.BallotItem(item_id="1", title="Elect Director Jane Roe")
    item.board_recommendation = board
    item.proponent.kind = kind
    item.category.npx_category = npx
    request = rs.RecommendRequest(meeting=valid_meeting([item]), policy="board-aligned")
    try:
        recommend(recommender, request, TODAY)
    except ProxyvoteError:
        return
    assert board in enums_pb2.Vote.values() and kind in (1, 2) and npx in enums_pb2.NpxCategory.values()


def test_a_long_meeting_of_repeated_wordings_decides_the_same_as_one_item_at_a_time(recommender):
    items = [
        meeting_pb2.BallotItem(
            item_id=str(n),
            title=["Elect Director A", "Report on Facial Recognition Risks", "Ratify Auditors"][n % 3],
            proponent=meeting_pb2.Proponent(kind=[enums_pb2.MANAGEMENT, enums_pb2.SHAREHOLDER][n % 3 == 1]),
            board_recommendation=[enums_pb2.FOR, enums_pb2.AGAINST][n % 3 == 1],
        )
        for n in range(300)
    ]
    whole = recommend(
        recommender, rs.RecommendRequest(meeting=valid_meeting(items), policy="human-rights-esg"), TODAY
    )
    for item, rec in zip(items, whole.recommendations, strict=True):
        alone = recommend(
            recommender, rs.RecommendRequest(meeting=valid_meeting([item]), policy="human-rights-esg"), TODAY
        ).recommendations[0]
        assert alone == rec
