"""The set of policies a deployment serves: lookup by reference, listing, checks.

Built from policy documents (the app's setup reads them from a folder);
``extends`` is resolved here, parents first, and a cycle or a missing parent is
a validation problem like any other.
"""

from __future__ import annotations

import datetime as dt
import re

from proxyvote.core.paging import encode_offset, page_bounds
from proxyvote.core.policy import Policy, PolicyDocument, compile_policy, read_policy
from proxyvote.core.taxonomy import Taxonomy
from proxyvote.errors import FieldViolation, InvalidArgument, NotFound, PolicyInvalid, PolicyProblem

MAX_VERSION = 2**31 - 1  # versions are int32 in the API
_VERSION = re.compile(r"[0-9]{1,10}")


def parse_reference(reference: str, field: str = "policy") -> tuple[str, int | None]:
    """``"id"`` or ``"id@version"`` (a leading ``policies/`` is accepted)."""
    text = reference.strip()
    if text.startswith("policies/"):
        text = text[len("policies/") :]
    policy_id, _, version = text.partition("@")
    if not policy_id:
        raise InvalidArgument([FieldViolation(field, "is required: a policy id or id@version")])
    # ASCII digits only ("²".isdigit() holds, int("²") fails), and a version the API's int32 can carry.
    if "@" in text and not (_VERSION.fullmatch(version) and 1 <= int(version) <= MAX_VERSION):
        raise InvalidArgument(
            [
                FieldViolation(
                    field,
                    f"{reference[:80]!r}: the version after @ must be an integer from 1 to {MAX_VERSION}",
                )
            ]
        )
    return policy_id, int(version) if version else None


class PolicyLibrary:
    def __init__(self, policies: list[Policy]):
        self._by_id: dict[str, dict[int, Policy]] = {}
        for p in policies:
            self._by_id.setdefault(p.id, {})[p.version] = p
        self._ordered = sorted(policies, key=lambda p: (p.id, p.version))

    @classmethod
    def from_documents(cls, documents: list[PolicyDocument]) -> PolicyLibrary:
        """Compiles documents, resolving ``extends``; raises PolicyInvalid on any problem."""
        problems: list[PolicyProblem] = []
        by_key: dict[tuple[str, int], PolicyDocument] = {}
        for doc in documents:
            key = (doc.id, doc.version)
            if key in by_key:
                problems.append(
                    doc.source.problem(
                        ("version",),
                        f"{doc.id}@{doc.version} is also defined in {by_key[key].source.filename}",
                    )
                )
            by_key[key] = doc
        latest: dict[str, PolicyDocument] = {}
        for doc in by_key.values():
            if doc.id not in latest or doc.version > latest[doc.id].version:
                latest[doc.id] = doc
        compiled: dict[tuple[str, int], Policy] = {}

        def build(doc: PolicyDocument, chain: tuple[str, ...]) -> Policy | None:
            key = (doc.id, doc.version)
            if key in compiled:
                return compiled[key]
            parent = None
            if doc.extends:
                if doc.extends in chain:
                    cycle = " -> ".join(chain + (doc.id, doc.extends))
                    problems.append(doc.source.problem(("extends",), f"extends forms a cycle: {cycle}"))
                    return None
                if doc.extends not in latest:
                    problems.append(
                        doc.source.problem(("extends",), f"extends unknown policy {doc.extends!r}")
                    )
                    return None
                parent = build(latest[doc.extends], chain + (doc.id,))
                if parent is None:
                    return None
            compiled[key] = compile_policy(doc, parent)
            return compiled[key]

        for doc in by_key.values():
            build(doc, ())
        if problems:
            raise PolicyInvalid(problems)
        return cls(list(compiled.values()))

    def all(self) -> list[Policy]:
        return list(self._ordered)

    def get(self, reference: str, field: str = "policy", tenant: str = "") -> Policy:
        """A policy by reference; ``tenant`` is accepted for the store-backed catalog's sake."""
        policy_id, version = parse_reference(reference, field)
        versions = self._by_id.get(policy_id)
        if not versions:
            raise NotFound("policy", policy_id)
        if version is None:
            return versions[max(versions)]
        if version not in versions:
            raise NotFound("policy version", f"{policy_id}@{version}")
        return versions[version]

    def in_force(self, reference: str, on: dt.date, tenant: str = "", field: str = "policy") -> Policy:
        """The version in force on a date, unless the reference pins ``id@version``."""
        policy_id, version = parse_reference(reference, field)
        if version is not None:
            return self.get(reference, field, tenant)
        versions = self._by_id.get(policy_id)
        if not versions:
            raise NotFound("policy", policy_id)
        return version_in_force(policy_id, [versions[v] for v in sorted(versions)], on)

    def latest(self) -> list[Policy]:
        return [versions[max(versions)] for _, versions in sorted(self._by_id.items())]

    def page(self, page_size: int, page_token: str) -> tuple[list[Policy], str]:
        """One page of every policy version, ordered by id then version (AIP-158)."""
        start, size = page_bounds(page_size, page_token)
        chunk = self._ordered[start : start + size]
        next_start = start + len(chunk)
        token = encode_offset(next_start) if next_start < len(self._ordered) else ""
        return chunk, token

    def check(self, text: str, filename: str, taxonomy: Taxonomy) -> Policy:
        """Validates a document against this library (its parent must exist here)."""

        def parent_of(policy_id: str):
            parent = self.get(policy_id, "extends")
            return parent, parent, _lineage(parent, self)

        return compile_checked(read_policy(text, filename, taxonomy), parent_of)[0]


def version_in_force(policy_id: str, versions: list[Policy], on: dt.date) -> Policy:
    """Of a policy's versions (ascending), the highest whose ``effective_from`` is on or
    before ``on``; a version without the date is in force from the start."""
    found = None
    for policy in versions:
        if policy.effective_from is None or policy.effective_from <= on:
            found = policy
    if found is None:
        raise NotFound("policy version in force", f"{policy_id} on {on.isoformat()}")
    return found


def compile_checked(document: PolicyDocument, parent_of) -> tuple[Policy, object | None]:
    """Compiles a validated document against its parent, or explains why it cannot be.

    ``parent_of(id)`` returns (a handle the caller wants back, the compiled parent,
    the ids of the parent and its ancestors), or raises NotFound.
    """
    if not document.extends:
        return compile_policy(document, None), None
    try:
        handle, parent, ancestors = parent_of(document.extends)
    except NotFound as exc:
        raise PolicyInvalid(
            [document.source.problem(("extends",), f"extends unknown policy {document.extends!r}")]
        ) from exc
    if document.id in ancestors:
        raise PolicyInvalid(
            [document.source.problem(("extends",), f"extends forms a cycle through {document.id!r}")]
        )
    return compile_policy(document, parent), handle


def _lineage(policy: Policy, library: PolicyLibrary) -> list[str]:
    """The ids of ``policy`` and its ancestors (the library itself is acyclic)."""
    ids = [policy.id]
    while policy.extends:
        policy = library.get(policy.extends)
        ids.append(policy.id)
    return ids
