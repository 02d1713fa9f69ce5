"""gRPC servicers: authenticate, convert, call the core and the store, convert back."""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable

import grpc

from proxyvote import ENGINE_VERSION
from proxyvote.api.auth import Authenticator
from proxyvote.api.grpc_errors import code_of, field_violations, request_id_of, unary
from proxyvote.app.decision_log import DecisionLog
from proxyvote.app.evidence_store import EvidenceStore
from proxyvote.app.policy_catalog import CatalogEntry, PolicyCatalog
from proxyvote.core.model import Issuer
from proxyvote.core.paging import encode_offset, page_bounds
from proxyvote.errors import (
    FieldViolation,
    InvalidArgument,
    NotFound,
    PolicyInvalid,
    ProxyvoteError,
    RenderFailed,
)
from proxyvote.memo import render as memo
from proxyvote.memo.render import MemoRenderer, check_options
from proxyvote.memo.tenant_templates import check_template, memo_context, render_template
from proxyvote.store import SHARED, canonical_time
from proxyvote.store.templates import TemplateRepository
from proxyvote.v1 import (
    decision_service_pb2 as ds,
)
from proxyvote.v1 import (
    decision_service_pb2_grpc,
    evidence_service_pb2,
    evidence_service_pb2_grpc,
    memo_service_pb2,
    memo_service_pb2_grpc,
    policy_pb2,
    policy_service_pb2,
    policy_service_pb2_grpc,
)
from proxyvote.v1 import (
    recommendation_service_pb2 as rs,
)
from proxyvote.v1 import recommendation_service_pb2_grpc as rs_grpc
from proxyvote.wire import convert

Clock = Callable[[], dt.date]
log = logging.getLogger(__name__)


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _time(value: dt.datetime | None) -> str:
    return canonical_time(value) if value is not None else ""


class RecommendationServicer(rs_grpc.RecommendationServiceServicer):
    def __init__(self, log: DecisionLog, auth: Authenticator, today: Clock = utc_today):
        self._log = log
        self._auth = auth
        self._today = today

    @unary(rs.RecommendResponse)
    def Recommend(self, request, context):
        tenant = self._auth.tenant(context)
        command = convert.recommend_command(request)
        return self._log.recommend(tenant, command, self._today(), deadline_of(context)).response

    @unary(rs.RecommendPoliciesResponse)
    def RecommendPolicies(self, request, context):
        tenant = self._auth.tenant(context)
        command, policies = convert.recommend_policies_command(request)
        recorded = self._log.recommend_many(tenant, command, policies, self._today(), deadline_of(context))
        return rs.RecommendPoliciesResponse(responses=[r.response for r in recorded])

    def StreamRecommend(self, request_iterator, context):
        try:
            tenant = self._auth.tenant(context)
        except ProxyvoteError as exc:
            context.abort(code_of(exc), str(exc))
        deadline = deadline_of(context)
        for message in request_iterator:
            if not context.is_active():
                return  # the caller cancelled or went away: no more work for it
            request = message.request
            try:
                command = convert.recommend_command(request)
                response = self._log.recommend(tenant, command, self._today(), deadline).response
            except ProxyvoteError as exc:
                yield _stream_error(request.request_id, code_of(exc), str(exc), field_violations(exc))
                continue
            except Exception as exc:  # a bug of ours: this request fails, the stream goes on
                request_id = request.request_id or request_id_of(context)
                log.error("unexpected error (request %s): %s", request_id, exc, exc_info=exc)
                message = f"internal error; it has been logged as request {request_id}"
                yield _stream_error(request.request_id, grpc.StatusCode.INTERNAL, message, [])
                continue
            yield rs.StreamRecommendResponse(request_id=request.request_id, response=response)


def deadline_of(context) -> float | None:
    """The call's deadline as a time.monotonic() value, or None when the caller set none."""
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


def _stream_error(request_id: str, code, message: str, violations) -> rs.StreamRecommendResponse:
    return rs.StreamRecommendResponse(
        request_id=request_id,
        error=rs.RequestError(
            code=code.value[0],
            message=message[:2000],
            field_violations=[rs.FieldViolation(field=f, description=d) for f, d in violations],
        ),
    )


def policy_message(entry: CatalogEntry) -> policy_pb2.Policy:
    message = convert.policy_to_proto(entry.policy)
    message.parent = entry.parent
    message.bundled = entry.stored.owner == SHARED
    message.create_time = _time(entry.stored.created_at)
    return message


class PolicyServicer(policy_service_pb2_grpc.PolicyServiceServicer):
    def __init__(self, catalog: PolicyCatalog, auth: Authenticator):
        self._catalog = catalog
        self._auth = auth

    @unary(policy_service_pb2.ListPoliciesResponse)
    def ListPolicies(self, request, context):
        entries = self._catalog.latest(self._auth.tenant(context))
        page, token = self._catalog.page(entries, request.page_size, request.page_token)
        return policy_service_pb2.ListPoliciesResponse(
            policies=[policy_message(e) for e in page], next_page_token=token
        )

    @unary(policy_service_pb2.GetPolicyResponse)
    def GetPolicy(self, request, context):
        entry = self._catalog.entry(self._auth.tenant(context), request.name, "name", fresh=True)
        return policy_service_pb2.GetPolicyResponse(policy=policy_message(entry))

    @unary(policy_service_pb2.ValidatePolicyResponse)
    def ValidatePolicy(self, request, context):
        tenant = self._auth.tenant(context)
        if not request.source.strip():
            raise InvalidArgument([FieldViolation("source", "is required: a policy document")])
        try:
            policy, _ = self._catalog.check(tenant, request.source, _filename(request))
        except PolicyInvalid as exc:
            return policy_service_pb2.ValidatePolicyResponse(
                valid=False, problems=[convert.problem_to_proto(p) for p in exc.problems]
            )
        return policy_service_pb2.ValidatePolicyResponse(valid=True, content_hash=policy.content_hash)

    @unary(policy_service_pb2.CreatePolicyResponse)
    def CreatePolicy(self, request, context):
        tenant = self._auth.tenant(context)
        _require(request.source, "source", "a policy document")
        entry = self._catalog.create(tenant, request.source, _filename(request))
        return policy_service_pb2.CreatePolicyResponse(policy=policy_message(entry))

    @unary(policy_service_pb2.UpdatePolicyResponse)
    def UpdatePolicy(self, request, context):
        tenant = self._auth.tenant(context)
        _require(request.name, "name", "the policy to update")
        _require(request.source, "source", "the new policy document")
        if request.expected_version < 1:
            raise InvalidArgument([FieldViolation("expected_version", "is required: the version you read")])
        entry = self._catalog.update(
            tenant, request.name, request.expected_version, request.source, _filename(request)
        )
        return policy_service_pb2.UpdatePolicyResponse(policy=policy_message(entry))

    @unary(policy_service_pb2.ListPolicyVersionsResponse)
    def ListPolicyVersions(self, request, context):
        entries = self._catalog.versions(self._auth.tenant(context), request.name)
        page, token = self._catalog.page(entries, request.page_size, request.page_token)
        return policy_service_pb2.ListPolicyVersionsResponse(
            policies=[policy_message(e) for e in page], next_page_token=token
        )

    @unary(policy_service_pb2.DiffPoliciesResponse)
    def DiffPolicies(self, request, context):
        base, target, changes = self._catalog.diff(self._auth.tenant(context), request.base, request.target)
        kind = policy_service_pb2.RuleChange.Kind
        return policy_service_pb2.DiffPoliciesResponse(
            base=f"{base.policy.id}@{base.policy.version}",
            target=f"{target.policy.id}@{target.policy.version}",
            changes=[
                policy_service_pb2.RuleChange(
                    rule_id=c.rule_id,
                    kind=kind.Value(f"KIND_{c.kind}"),
                    fields=c.fields,
                    before=c.before,
                    after=c.after,
                )
                for c in changes
            ],
        )


MAX_FILENAME = 300  # the store's column


def _filename(request) -> str:
    """The policy document's file name, for its problems and the store; "<request>" without one."""
    if len(request.filename) > MAX_FILENAME:
        raise InvalidArgument([FieldViolation("filename", f"is longer than {MAX_FILENAME} characters")])
    return request.filename or "<request>"


def _require(value: str, field: str, what: str) -> None:
    if not value.strip():
        raise InvalidArgument([FieldViolation(field, f"is required: {what}")])


class DecisionServicer(decision_service_pb2_grpc.DecisionServiceServicer):
    def __init__(self, log: DecisionLog, auth: Authenticator):
        self._log = log
        self._auth = auth

    @unary(ds.GetDecisionResponse)
    def GetDecision(self, request, context):
        tenant = self._auth.tenant(context)
        _require(request.decision_id, "decision_id", "a decision id")
        stored, overrides = self._log.get(tenant, request.decision_id)
        entry = self._log.catalog.by_pk(stored.policy_pk)
        return ds.GetDecisionResponse(
            decision=ds.StoredDecision(
                decision_id=stored.decision_id,
                meeting_id=stored.meeting_id,
                policy=convert.policy_ref_to_proto(entry.policy.ref),
                engine_version=stored.engine_version,
                as_of=stored.as_of.isoformat(),
                create_time=_time(stored.created_at),
                chain_seq=stored.chain_seq,
                prev_hash=stored.prev_hash,
                entry_hash=stored.entry_hash,
                request=rs.RecommendRequest.FromString(stored.request),
                response=rs.RecommendResponse.FromString(stored.response),
                overrides=[override_message(o) for o in overrides],
            )
        )

    @unary(ds.ReplayDecisionResponse)
    def ReplayDecision(self, request, context):
        tenant = self._auth.tenant(context)
        _require(request.decision_id, "decision_id", "a decision id")
        replay = self._log.replay(tenant, request.decision_id)
        return ds.ReplayDecisionResponse(
            decision_id=request.decision_id,
            identical=replay.identical,
            stored_engine_version=replay.stored_engine_version,
            engine_version=ENGINE_VERSION,
            differing_item_ids=replay.differing_item_ids,
            replayed=replay.response,
        )

    @unary(ds.VerifyAuditLogResponse)
    def VerifyAuditLog(self, request, context):
        result = self._log.verify(self._auth.tenant(context))
        return ds.VerifyAuditLogResponse(
            ok=result.ok, checked=result.checked, first_bad_seq=result.first_bad_seq, reason=result.reason
        )

    @unary(ds.OverrideRecommendationResponse)
    def OverrideRecommendation(self, request, context):
        tenant = self._auth.tenant(context)
        vote = convert.VOTE_NAMES.get(request.vote, "")
        violations = []
        for field, value in (
            ("decision_id", request.decision_id),
            ("item_id", request.item_id),
            ("reason", request.reason),
            ("analyst", request.analyst),
        ):
            if not value.strip():
                violations.append(FieldViolation(field, "is required"))
        if vote in ("", "NONE", "REFER"):
            violations.append(FieldViolation("vote", "is required: a vote a shareholder can cast"))
        if len(request.reason) > 10_000:
            violations.append(FieldViolation("reason", "is longer than 10000 characters"))
        for field, value in (("item_id", request.item_id), ("analyst", request.analyst)):
            if len(value) > convert.MAX_ID:  # the store's column: longer was a DataError on PostgreSQL
                violations.append(FieldViolation(field, f"is longer than {convert.MAX_ID} characters"))
        if violations:
            raise InvalidArgument(violations)
        stored = self._log.override(
            tenant, request.decision_id, request.item_id, vote, request.reason, request.analyst
        )
        return ds.OverrideRecommendationResponse(override=override_message(stored))


def override_message(o) -> ds.Override:
    return ds.Override(
        override_id=o.override_id,
        decision_id=o.decision_id,
        item_id=o.item_id,
        vote=convert.VOTE_VALUES[o.vote],
        reason=o.reason,
        analyst=o.analyst,
        create_time=_time(o.created_at),
    )


class MemoServicer(memo_service_pb2_grpc.MemoServiceServicer):
    def __init__(
        self,
        log: DecisionLog,
        renderer: MemoRenderer,
        templates: TemplateRepository,
        auth: Authenticator,
        today: Clock = utc_today,
    ):
        self._log = log
        self._renderer = renderer
        self._templates = templates
        self._auth = auth
        self._today = today

    @unary(memo_service_pb2.RenderMemoResponse)
    def RenderMemo(self, request, context):
        tenant = self._auth.tenant(context)
        # Unknown enum values (a newer client's) are refused before anything is decided.
        memo_format, variant = check_options(request.format, request.variant)
        if variant == memo.VARIANT_PERSPECTIVES:
            return self._perspectives(tenant, request, memo_format)
        for field in ("decision_ids", "policies"):
            if getattr(request, field):
                raise InvalidArgument([FieldViolation(field, "is only for the perspectives variant")])
        source = None
        if request.template:
            source = self._templates.latest(tenant, request.template)
            if source is None:
                raise NotFound("memo template", request.template)
        overrides, decision_id, differs = (), "", None
        if request.decision_id:
            # The stored decision, decided again from its stored inputs (a replay), with its overrides.
            replay = self._log.replay(tenant, request.decision_id)
            decision, overrides, decision_id = replay.decision, replay.overrides, request.decision_id
            differs = None if replay.identical else replay.stored_engine_version
        else:
            if not request.HasField("meeting"):
                raise InvalidArgument([FieldViolation("meeting", "is required (or a decision_id)")])
            # Decided as Recommend decides (stored evidence as of the date included), but not stored.
            command = convert.recommend_command(
                rs.RecommendRequest(
                    meeting=request.meeting,
                    policy=request.policy,
                    as_of=request.as_of,
                    evidence=request.evidence,
                )
            )
            decision = self._log.decide(tenant, command, self._today())
        if source is not None:
            try:
                html = render_template(source, memo_context(decision, overrides, decision_id))
            except RenderFailed as exc:
                raise InvalidArgument([FieldViolation("template", str(exc))]) from exc
            return memo_service_pb2.RenderMemoResponse(content=html.encode("utf-8"), content_type=memo.HTML)
        content, content_type = self._renderer.render(
            decision, memo_format, overrides, decision_id, differs, variant=variant
        )
        return memo_service_pb2.RenderMemoResponse(content=content, content_type=content_type)

    def _perspectives(self, tenant: str, request, memo_format: int):
        """One meeting under several policies, a column each: stored decisions (replayed, as
        the single memo replays one), or the meeting decided under ``policies``, not stored."""
        if request.template:
            raise InvalidArgument([FieldViolation("template", "is not used by the perspectives variant")])
        if request.decision_id:
            raise InvalidArgument(
                [FieldViolation("decision_id", "use decision_ids for the perspectives variant")]
            )
        if request.decision_ids:
            if request.policies or request.policy:
                field = "policies" if request.policies else "policy"
                raise InvalidArgument([FieldViolation(field, "is not used with decision_ids")])
            decision_ids = tuple(request.decision_ids)
            _check_decision_ids(decision_ids)
            decisions = []
            for i, decision_id in enumerate(decision_ids):
                decision = self._log.replay(tenant, decision_id).decision
                if decisions and decision.meeting != decisions[0].meeting:
                    raise InvalidArgument(
                        [
                            FieldViolation(
                                f"decision_ids[{i}]",
                                f"decides meeting {decision.meeting.meeting_id}, not the meeting of "
                                f"decision_ids[0] ({decisions[0].meeting.meeting_id})",
                            )
                        ]
                    )
                decisions.append(decision)
        else:
            if request.policy:
                raise InvalidArgument([FieldViolation("policy", "use policies for the perspectives variant")])
            command, policies = convert.recommend_policies_command(request)
            decisions = self._log.decide_many(tenant, command, policies, self._today())
            decision_ids = ()
        content, content_type = self._renderer.render_perspectives(
            tuple(decisions), memo_format, decision_ids
        )
        return memo_service_pb2.RenderMemoResponse(content=content, content_type=content_type)

    @unary(memo_service_pb2.UploadMemoTemplateResponse)
    def UploadMemoTemplate(self, request, context):
        tenant = self._auth.tenant(context)
        if not _TEMPLATE_NAME.fullmatch(request.name):
            raise InvalidArgument(
                [FieldViolation("name", "must be 1 to 100 lower-case letters, digits or dashes")]
            )
        if not request.source.strip():
            raise InvalidArgument([FieldViolation("source", "is required: a Jinja template")])
        check_template(request.source)
        version = self._templates.add(tenant, request.name, request.source)
        return memo_service_pb2.UploadMemoTemplateResponse(name=request.name, version=version)


def _check_decision_ids(decision_ids: tuple[str, ...]) -> None:
    violations = []
    if len(decision_ids) > convert.MAX_POLICIES:
        violations.append(FieldViolation("decision_ids", f"names more than {convert.MAX_POLICIES} decisions"))
    seen: dict[str, int] = {}
    for i, decision_id in enumerate(decision_ids):
        if not decision_id.strip():
            violations.append(FieldViolation(f"decision_ids[{i}]", "is required: a decision id"))
        elif decision_id in seen:
            violations.append(
                FieldViolation(f"decision_ids[{i}]", f"duplicate (also decision_ids[{seen[decision_id]}])")
            )
        seen.setdefault(decision_id, i)
    if violations:
        raise InvalidArgument(violations)


_TEMPLATE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,99}")


class EvidenceServicer(evidence_service_pb2_grpc.EvidenceServiceServicer):
    def __init__(self, evidence: EvidenceStore, auth: Authenticator, today: Clock = utc_today):
        self._evidence = evidence
        self._auth = auth
        self._today = today

    @unary(evidence_service_pb2.ImportEvidenceResponse)
    def ImportEvidence(self, request, context):
        tenant = self._auth.tenant(context)
        if not request.records:
            raise InvalidArgument([FieldViolation("records", "must hold at least one record")])
        records = convert.evidence_from_proto(request.records, "records")
        imported, unchanged = self._evidence.import_records(tenant, records)
        return evidence_service_pb2.ImportEvidenceResponse(imported=imported, unchanged=unchanged)

    @unary(evidence_service_pb2.ListEvidenceResponse)
    def ListEvidence(self, request, context):
        tenant = self._auth.tenant(context)
        if not (request.issuer_ticker.strip() or request.issuer_name.strip()):
            raise InvalidArgument([FieldViolation("issuer_ticker", "is required (or issuer_name)")])
        as_of = convert.parse_as_of(request.as_of) or self._today()
        issuer = Issuer(name=request.issuer_name, ticker=request.issuer_ticker)
        records = self._evidence.visible(tenant, issuer, as_of)
        start, size = page_bounds(request.page_size, request.page_token)
        page = records[start : start + size]
        end = start + len(page)
        return evidence_service_pb2.ListEvidenceResponse(
            records=[convert.evidence_to_proto(r) for r in page],
            next_page_token=encode_offset(end) if end < len(records) else "",
            as_of=as_of.isoformat(),
        )
