"""The store on SQLite and PostgreSQL: migrations, policy lifecycle, audit log, overrides."""

from __future__ import annotations

import grpc
import pytest
import sqlalchemy
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from proxyvote.app.files import load_policy_library
from proxyvote.errors import Aborted, AlreadyExists, NotFound, PermissionDenied, PolicyInvalid
from proxyvote.store.models import Base
from proxyvote.store.schema import downgrade, upgrade
from proxyvote.v1 import decision_service_pb2 as ds
from proxyvote.v1 import enums_pb2
from proxyvote.v1 import policy_service_pb2 as ps
from proxyvote.v1 import recommendation_service_pb2 as rs

from .conftest import TODAY, call, evidence_messages, meeting_message, servicers_under_test

CHILD_V1 = """\
id: stewardship-house
version: 1
extends: governance-baseline
title: House policy
default: {vote: REFER}
rules:
  - id: chair
    when: {topics: [independent_chair]}
    vote: AGAINST
    why: This house view keeps a combined chair and CEO.
"""
CHILD_V2 = CHILD_V1.replace("version: 1", "version: 2").replace("vote: AGAINST", "vote: ABSTAIN")


def tables(url: str) -> set[str]:
    engine = sqlalchemy.create_engine(url)
    try:
        return set(sqlalchemy.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_migrations_upgrade_from_empty_downgrade_and_upgrade_again(database_url):
    assert {"tenants", "api_keys", "policy_versions", "meetings", "decisions", "overrides"} <= tables(
        database_url
    )
    downgrade(database_url, "base")
    assert tables(database_url) <= {"alembic_version"}
    upgrade(database_url)
    assert "decisions" in tables(database_url)


def test_the_models_and_the_migrations_agree(database_url):
    engine = sqlalchemy.create_engine(database_url)
    try:
        with engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    finally:
        engine.dispose()


def test_bundled_policies_are_stored_at_first_start_and_not_twice(app):
    bundled = {(e.policy.id, e.policy.version) for e in app.catalog.latest("")}
    assert {("human-rights-esg", 3), ("governance-baseline", 1), ("board-aligned", 1)} <= bundled
    assert app.catalog.seed_bundled(load_policy_library(app.settings.policy_dir, app.catalog.taxonomy)) == []


def test_policy_versions_are_immutable_and_a_stale_update_is_aborted(app):
    tenant, _ = app.store.tenants.create("house")
    first = app.catalog.create(tenant, CHILD_V1, "house.yaml")
    assert (first.policy.version, first.parent) == (1, "governance-baseline@1")
    second = app.catalog.update(tenant, "stewardship-house", 1, CHILD_V2, "house.yaml")
    assert second.policy.version == 2
    with pytest.raises(Aborted):
        app.catalog.update(tenant, "stewardship-house", 1, CHILD_V2, "house.yaml")
    versions = app.catalog.versions(tenant, "stewardship-house")
    assert [e.policy.version for e in versions] == [1, 2]
    assert versions[0].policy.content_hash == first.policy.content_hash  # v1 unchanged


def test_an_invalid_policy_is_never_stored(app):
    tenant, _ = app.store.tenants.create("careless")
    with pytest.raises(PolicyInvalid):
        app.catalog.create(tenant, CHILD_V1.replace("independent_chair", "no_such_topic"), "bad.yaml")
    with pytest.raises(NotFound):
        app.catalog.versions(tenant, "stewardship-house")


def test_bundled_policies_are_readable_by_all_and_writable_by_none(app):
    tenant, _ = app.store.tenants.create("reader")
    assert app.catalog.entry(tenant, "human-rights-esg").policy.id == "human-rights-esg"
    source = (app.catalog.entry(tenant, "board-aligned").stored.source).replace("version: 1", "version: 2")
    with pytest.raises(PermissionDenied):
        app.catalog.update(tenant, "board-aligned", 1, source, "x.yaml")
    with pytest.raises(AlreadyExists):
        app.catalog.create(tenant, source.replace("version: 2", "version: 1"), "x.yaml")


def test_diff_reports_what_changed_rule_by_rule(app):
    tenant, _ = app.store.tenants.create("differ")
    app.catalog.create(tenant, CHILD_V1, "house.yaml")
    app.catalog.update(tenant, "stewardship-house", 1, CHILD_V2, "house.yaml")
    _, _, changes = app.catalog.diff(tenant, "stewardship-house@1", "stewardship-house@2")
    assert [(c.rule_id, c.kind, c.fields) for c in changes] == [("chair", "CHANGED", ("vote",))]
    _, _, changes = app.catalog.diff(tenant, "governance-baseline@1", "stewardship-house@1")
    kinds = {(c.rule_id, c.kind) for c in changes}
    assert ("chair", "ADDED") in kinds and ("independent-chair", "MOVED") not in kinds


def record_demo_decisions(app, key):
    server = servicers_under_test(app)
    ids = []
    for meeting in ("amazon-2019-agm", "amazon-2020-agm", "amazon-2021-agm"):
        for policy in ("human-rights-esg", "board-aligned", "governance-baseline"):
            request = rs.RecommendRequest(
                meeting=meeting_message(meeting), policy=policy, evidence=evidence_messages()
            )
            response, code, details, _ = call(server, "RecommendationService/Recommend", request, key)
            assert code is grpc.StatusCode.OK, details
            ids.append(response.decision_id)
    return server, ids


def test_every_stored_decision_of_the_demo_meetings_replays_byte_for_byte(app):
    _, key = app.store.tenants.create("replayer")
    server, ids = record_demo_decisions(app, key)
    for decision_id in ids:
        reply, code, _, _ = call(
            server, "DecisionService/ReplayDecision", ds.ReplayDecisionRequest(decision_id=decision_id), key
        )
        assert code is grpc.StatusCode.OK and reply.identical, decision_id
    verified, _, _, _ = call(server, "DecisionService/VerifyAuditLog", ds.VerifyAuditLogRequest(), key)
    assert verified.ok and verified.checked == len(ids)


def test_a_stored_decision_keeps_its_inputs_and_as_of(app):
    _, key = app.store.tenants.create("keeper")
    server, ids = record_demo_decisions(app, key)
    got, code, _, _ = call(
        server, "DecisionService/GetDecision", ds.GetDecisionRequest(decision_id=ids[0]), key
    )
    assert code is grpc.StatusCode.OK
    decision = got.decision
    assert decision.request.as_of == TODAY.isoformat() == decision.as_of
    assert decision.policy.id == "human-rights-esg" and len(decision.policy.content_hash) == 64
    assert decision.meeting_id == "AMZN-2019-AGM" and decision.chain_seq == 1
    assert len(decision.request.evidence) == len(evidence_messages())


def test_altering_a_stored_row_by_hand_breaks_the_chain_and_the_replay(app, database_url):
    _, key = app.store.tenants.create("tamper")
    server, ids = record_demo_decisions(app, key)
    engine = sqlalchemy.create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            sqlalchemy.text("UPDATE decisions SET response = :r WHERE decision_id = :d"),
            {"r": rs.RecommendResponse(meeting_id="FORGED").SerializeToString(), "d": ids[4]},
        )
    engine.dispose()
    verified, _, _, _ = call(server, "DecisionService/VerifyAuditLog", ds.VerifyAuditLogRequest(), key)
    assert not verified.ok and verified.first_bad_seq == 5 and verified.checked == 4
    reply, _, _, _ = call(
        server, "DecisionService/ReplayDecision", ds.ReplayDecisionRequest(decision_id=ids[4]), key
    )
    assert not reply.identical


def test_an_override_is_a_new_record_beside_the_decision(app):
    _, key = app.store.tenants.create("analysts")
    server, ids = record_demo_decisions(app, key)
    request = ds.OverrideRecommendationRequest(
        decision_id=ids[3],
        item_id="6",
        vote=enums_pb2.AGAINST,
        reason="Engagement agreed in April.",
        analyst="j.doe",
    )
    made, code, _, _ = call(server, "DecisionService/OverrideRecommendation", request, key)
    assert code is grpc.StatusCode.OK and made.override.override_id
    got, _, _, _ = call(server, "DecisionService/GetDecision", ds.GetDecisionRequest(decision_id=ids[3]), key)
    assert [(o.item_id, o.vote, o.reason) for o in got.decision.overrides] == [
        ("6", enums_pb2.AGAINST, "Engagement agreed in April.")
    ]
    item6 = next(r for r in got.decision.response.recommendations if r.item_id == "6")
    assert item6.vote == enums_pb2.FOR  # the decision itself is unchanged
    for bad, code in (
        (
            ds.OverrideRecommendationRequest(
                decision_id=ids[3], item_id="6", vote=enums_pb2.AGAINST, analyst="x"
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            ds.OverrideRecommendationRequest(
                decision_id=ids[3], item_id="99", vote=enums_pb2.AGAINST, reason="r", analyst="x"
            ),
            grpc.StatusCode.NOT_FOUND,
        ),
        (  # found by tests/test_fuzz.py: longer than the column was a DataError on PostgreSQL (INTERNAL)
            ds.OverrideRecommendationRequest(
                decision_id=ids[3], item_id="6", vote=enums_pb2.AGAINST, reason="r", analyst="x" * 201
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
    ):
        assert call(server, "DecisionService/OverrideRecommendation", bad, key)[1] is code
    verified, _, _, _ = call(server, "DecisionService/VerifyAuditLog", ds.VerifyAuditLogRequest(), key)
    assert verified.ok


def test_another_tenants_ids_are_not_found_on_every_rpc(app):
    owner, owner_key = app.store.tenants.create("owner")
    _, other_key = app.store.tenants.create("other")
    server = servicers_under_test(app)
    created, code, details, _ = call(
        server, "PolicyService/CreatePolicy", ps.CreatePolicyRequest(source=CHILD_V1), owner_key
    )
    assert code is grpc.StatusCode.OK, details
    request = rs.RecommendRequest(meeting=meeting_message(), policy="stewardship-house")
    decided, code, _, _ = call(server, "RecommendationService/Recommend", request, owner_key)
    assert code is grpc.StatusCode.OK
    decision = decided.decision_id
    from proxyvote.v1 import memo_service_pb2 as ms

    hidden = [
        ("RecommendationService/Recommend", request),
        (
            "MemoService/RenderMemo",
            ms.RenderMemoRequest(meeting=meeting_message(), policy="stewardship-house"),
        ),
        ("PolicyService/GetPolicy", ps.GetPolicyRequest(name="stewardship-house")),
        ("PolicyService/ListPolicyVersions", ps.ListPolicyVersionsRequest(name="stewardship-house")),
        (
            "PolicyService/UpdatePolicy",
            ps.UpdatePolicyRequest(name="stewardship-house", expected_version=1, source=CHILD_V2),
        ),
        (
            "PolicyService/DiffPolicies",
            ps.DiffPoliciesRequest(base="stewardship-house@1", target="governance-baseline"),
        ),
        ("DecisionService/GetDecision", ds.GetDecisionRequest(decision_id=decision)),
        ("DecisionService/ReplayDecision", ds.ReplayDecisionRequest(decision_id=decision)),
        (
            "DecisionService/OverrideRecommendation",
            ds.OverrideRecommendationRequest(
                decision_id=decision, item_id="6", vote=enums_pb2.AGAINST, reason="r", analyst="a"
            ),
        ),
    ]
    for method, message in hidden:
        _, code, _, _ = call(server, method, message, other_key)
        assert code is grpc.StatusCode.NOT_FOUND, method
        _, code, _, _ = call(server, method, message, owner_key)
        assert code is grpc.StatusCode.OK or method == "PolicyService/UpdatePolicy", method
    stream = server.invoke_stream_stream(
        rs.DESCRIPTOR.services_by_name["RecommendationService"].methods_by_name["StreamRecommend"],
        (("authorization", f"Bearer {other_key}"),),
        None,
    )
    stream.send_request(rs.StreamRecommendRequest(request=request))
    stream.requests_closed()
    answer = stream.take_response()
    stream.termination()
    assert answer.error.code == grpc.StatusCode.NOT_FOUND.value[0]
    listed, _, _, _ = call(server, "PolicyService/ListPolicies", ps.ListPoliciesRequest(), other_key)
    assert "stewardship-house" not in {p.id for p in listed.policies}
    validated, _, _, _ = call(
        server,
        "PolicyService/ValidatePolicy",
        ps.ValidatePolicyRequest(
            source=CHILD_V1.replace("id: stewardship-house", "id: copy").replace(
                "extends: governance-baseline", "extends: stewardship-house"
            )
        ),
        other_key,
    )
    assert not validated.valid and "unknown policy" in validated.problems[0].message
    verified, _, _, _ = call(server, "DecisionService/VerifyAuditLog", ds.VerifyAuditLogRequest(), other_key)
    assert verified.ok and verified.checked == 0
    created_again, code, _, _ = call(
        server, "PolicyService/CreatePolicy", ps.CreatePolicyRequest(source=CHILD_V1), other_key
    )
    assert code is grpc.StatusCode.OK and created_again.policy.id == "stewardship-house"  # ids are per tenant
    assert owner


def test_the_memo_of_a_stored_decision_shows_the_policy_vote_and_the_override(app):
    from proxyvote.v1 import memo_service_pb2 as ms

    _, key = app.store.tenants.create("memo-readers")
    server, ids = record_demo_decisions(app, key)
    call(
        server,
        "DecisionService/OverrideRecommendation",
        ds.OverrideRecommendationRequest(
            decision_id=ids[3],
            item_id="7",
            vote=enums_pb2.ABSTAIN,
            reason="Company committed to a review.",
            analyst="a.analyst",
        ),
        key,
    )
    memo, code, details, _ = call(
        server, "MemoService/RenderMemo", ms.RenderMemoRequest(decision_id=ids[3]), key
    )
    assert code is grpc.StatusCode.OK, details
    text = memo.content.decode()
    assert f"| Decision | {ids[3].replace('_', chr(92) + '_')} |" in text
    assert "~~FOR~~ **ABSTAIN** (analyst)" in text
    assert (
        "**Analyst override**: ABSTAIN instead of FOR, by a.analyst" in text
        and "committed to a review" in text
    )


def test_a_tenant_template_is_checked_at_upload_and_renders_in_the_sandbox(app):
    from proxyvote.v1 import memo_service_pb2 as ms

    _, key = app.store.tenants.create("designers")
    server = servicers_under_test(app)
    for bad in ("{{ meeting.__class__.__mro__ }}", "{% for x in items %}"):
        _, code, details, trailing = call(
            server,
            "MemoService/UploadMemoTemplate",
            ms.UploadMemoTemplateRequest(name="house", source=bad),
            key,
        )
        assert code is grpc.StatusCode.INVALID_ARGUMENT and "line 1" in details, details
    assert app.store.templates.latest(app.store.tenants.for_key(key), "house") is None  # nothing stored
    good = (
        "<h1>{{ meeting.issuer.name }}</h1>"
        "{% for i in items %}<p>{{ i.number }} {{ i.title }}: {{ i.vote }}</p>{% endfor %}"
    )
    made, code, _, _ = call(
        server, "MemoService/UploadMemoTemplate", ms.UploadMemoTemplateRequest(name="house", source=good), key
    )
    assert code is grpc.StatusCode.OK and made.version == 1
    meeting = meeting_message()
    meeting.items[0].title = "<script>alert(1)</script>"
    memo, code, details, _ = call(
        server,
        "MemoService/RenderMemo",
        ms.RenderMemoRequest(
            meeting=meeting, policy="human-rights-esg", as_of="2020-05-20", template="house"
        ),
        key,
    )
    assert code is grpc.StatusCode.OK, details
    html = memo.content.decode()
    assert memo.content_type.startswith("text/html") and html.startswith("<h1>Amazon.com, Inc.</h1>")
    assert "&lt;script&gt;" in html and "<script>" not in html
    _, code, _, _ = call(
        server,
        "MemoService/RenderMemo",
        ms.RenderMemoRequest(meeting=meeting, policy="human-rights-esg", template="other"),
        key,
    )
    assert code is grpc.StatusCode.NOT_FOUND


def test_evidence_is_imported_per_tenant_and_listed_as_of_a_date(app):
    from proxyvote.v1 import evidence_pb2
    from proxyvote.v1 import evidence_service_pb2 as es

    _, key = app.store.tenants.create("researchers")
    _, other = app.store.tenants.create("others")
    server = servicers_under_test(app)
    mine = evidence_pb2.EvidenceRecord(
        evidence_id="own-2020-01",
        issuer=evidence_pb2.EvidenceIssuer(name="Amazon.com, Inc.", ticker="AMZN"),
        published="2020-01-15",
        topics=["worker_safety"],
        kind=enums_pb2.CONTROVERSY,
        status=enums_pb2.REPORTED,
        summary="Our own research note.",
    )
    made, code, details, _ = call(
        server, "EvidenceService/ImportEvidence", es.ImportEvidenceRequest(records=[mine]), key
    )
    assert code is grpc.StatusCode.OK and made.imported == 1, details
    again, _, _, _ = call(
        server, "EvidenceService/ImportEvidence", es.ImportEvidenceRequest(records=[mine]), key
    )
    assert (again.imported, again.unchanged) == (0, 1)
    changed = evidence_pb2.EvidenceRecord()
    changed.CopyFrom(mine)
    changed.summary = "Edited."
    assert call(server, "EvidenceService/ImportEvidence", es.ImportEvidenceRequest(records=[changed]), key)[
        1
    ] is (grpc.StatusCode.ALREADY_EXISTS)
    bad = evidence_pb2.EvidenceRecord(evidence_id="x", issuer=mine.issuer, kind=enums_pb2.CONTROVERSY)
    _, code, _, trailing = call(
        server, "EvidenceService/ImportEvidence", es.ImportEvidenceRequest(records=[bad]), key
    )
    assert code is grpc.StatusCode.INVALID_ARGUMENT

    def listed(as_of, who):
        reply, code, details, _ = call(
            server,
            "EvidenceService/ListEvidence",
            es.ListEvidenceRequest(issuer_ticker="AMZN", as_of=as_of),
            who,
        )
        assert code is grpc.StatusCode.OK, details
        return [r.evidence_id for r in reply.records]

    assert "own-2020-01" in listed("2020-05-20", key) and "own-2020-01" not in listed("2020-05-20", other)
    assert "amzn-2019-07-palantir-ice-hosting" in listed("2020-05-20", other)  # the shared set
    assert "own-2020-01" not in listed("2019-12-31", key)
    assert all(i != "amzn-2024-06-visionlabs-allegation" for i in listed("2020-05-20", key))


def test_a_stored_decision_holds_the_stored_evidence_it_saw_and_nothing_later(app):
    _, key = app.store.tenants.create("pit")
    server = servicers_under_test(app)
    request = rs.RecommendRequest(meeting=meeting_message(), policy="human-rights-esg", as_of="2020-05-20")
    decided, code, _, _ = call(server, "RecommendationService/Recommend", request, key)
    assert code is grpc.StatusCode.OK
    item6 = next(r for r in decided.recommendations if r.item_id == "6")
    assert item6.strength == "strong" and "amzn-2019-07-palantir-ice-hosting" in item6.cited_evidence_ids
    got, _, _, _ = call(
        server, "DecisionService/GetDecision", ds.GetDecisionRequest(decision_id=decided.decision_id), key
    )
    seen = {r.evidence_id: r.published for r in got.decision.request.evidence}
    assert seen and all(published <= "2020-05-20" for published in seen.values())
    replay, _, _, _ = call(
        server,
        "DecisionService/ReplayDecision",
        ds.ReplayDecisionRequest(decision_id=decided.decision_id),
        key,
    )
    assert replay.identical


def test_a_policy_filename_longer_than_its_column_is_refused(app):
    # Found while fuzzing: a filename past the store's 300-character column was a DataError
    # answered INTERNAL on PostgreSQL (SQLite stores any length).
    _, key = app.store.tenants.create("filenames")
    server = servicers_under_test(app)
    for method, request in (
        ("PolicyService/CreatePolicy", ps.CreatePolicyRequest(source=CHILD_V1, filename="f" * 301)),
        ("PolicyService/ValidatePolicy", ps.ValidatePolicyRequest(source=CHILD_V1, filename="f" * 301)),
    ):
        _, code, details, trailing = call(server, method, request, key)
        assert code is grpc.StatusCode.INVALID_ARGUMENT, details
        assert "filename" in details
    _, code, details, _ = call(
        server, "PolicyService/CreatePolicy", ps.CreatePolicyRequest(source=CHILD_V1, filename="f" * 300), key
    )
    assert code is grpc.StatusCode.OK, details


def test_evidence_issuer_longer_than_its_columns_is_refused(app):
    # Found while fuzzing: an issuer ticker past the store's 40-character column (or a name past
    # 4000) was a DataError answered INTERNAL on PostgreSQL (SQLite stores any length).
    from proxyvote.v1 import enums_pb2, evidence_pb2
    from proxyvote.v1 import evidence_service_pb2 as es

    _, key = app.store.tenants.create("long-issuers")
    server = servicers_under_test(app)
    for issuer, field in (
        (evidence_pb2.EvidenceIssuer(name="Amazon.com, Inc.", ticker="T" * 41), "records[0].issuer.ticker"),
        (evidence_pb2.EvidenceIssuer(name="N" * 4001, ticker="AMZN"), "records[0].issuer.name"),
    ):
        record = evidence_pb2.EvidenceRecord(
            evidence_id="long", issuer=issuer, published="2020-01-15", kind=enums_pb2.CONTROVERSY
        )
        _, code, details, trailing = call(
            server, "EvidenceService/ImportEvidence", es.ImportEvidenceRequest(records=[record]), key
        )
        assert code is grpc.StatusCode.INVALID_ARGUMENT, details
        assert field in details
