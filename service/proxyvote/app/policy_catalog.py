"""Policies kept in the store: per tenant, versioned, immutable.

The store-backed counterpart of ``PolicyLibrary``: the same ``get`` for the
recommender, plus the lifecycle (create, update with a stale-version check,
versions, diff). A version is compiled against the exact parent version it
was stored with, so a decision replays under the policy it was made with.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass

from proxyvote.core.paging import encode_offset, page_bounds
from proxyvote.core.policy import Policy, compile_policy, read_policy
from proxyvote.core.policy_diff import RuleChange, diff_policies
from proxyvote.core.policy_library import (
    PolicyLibrary,
    compile_checked,
    parse_reference,
    version_in_force,
)
from proxyvote.core.taxonomy import Taxonomy
from proxyvote.errors import (
    AlreadyExists,
    BundledPolicyChanged,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    PolicyInvalid,
)
from proxyvote.store import SHARED, StoredPolicy
from proxyvote.store.policies import PolicyRepository

LATEST_TTL = 1.0


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    stored: StoredPolicy
    policy: Policy
    parent: str  # "id@version" or ""


class PolicyCatalog:
    def __init__(self, policies: PolicyRepository, taxonomy: Taxonomy):
        self.policies = policies
        self.taxonomy = taxonomy
        self._compiled: dict[int, CatalogEntry] = {}
        self._lookups: dict[tuple[str, str, int | None], tuple[int, float]] = {}
        self._lock = threading.Lock()

    # --- reading --------------------------------------------------------------

    @staticmethod
    def owners(tenant: str) -> tuple[str, ...]:
        return (tenant, SHARED) if tenant != SHARED else (SHARED,)

    def entry(self, tenant: str, reference: str, field: str = "policy", fresh: bool = False) -> CatalogEntry:
        """A policy version the tenant can see.

        An exact version never changes, so its lookup is remembered for good;
        "the latest" is remembered for LATEST_TTL seconds (forgotten at once
        when this process stores a new version), so another replica's update
        is seen within that time. The decision records which version it used.
        ``fresh`` asks the database about the latest version (for people
        reading a policy in order to update it).
        """
        policy_id, version = parse_reference(reference, field)
        key = (tenant, policy_id, version)
        remembered = self._lookups.get(key)
        if remembered is not None and (
            version is not None or (not fresh and time.monotonic() - remembered[1] < LATEST_TTL)
        ):
            return self._compiled[remembered[0]]
        stored = self.policies.version(self.owners(tenant), policy_id, version)
        if stored is None:
            raise NotFound("policy" if version is None else "policy version", reference.strip())
        entry = self._entry(stored)
        with self._lock:
            if len(self._lookups) >= 100_000:
                self._lookups.clear()
            self._lookups[key] = (stored.pk, time.monotonic())
        return entry

    def get(self, reference: str, field: str = "policy", tenant: str = SHARED) -> Policy:
        return self.entry(tenant, reference, field).policy

    def in_force(self, reference: str, on: dt.date, tenant: str = SHARED, field: str = "policy") -> Policy:
        """The version the tenant can see in force on a date, unless pinned ``id@version``."""
        policy_id, version = parse_reference(reference, field)
        if version is not None:
            return self.get(reference, field, tenant)
        entries = self.versions(tenant, policy_id)
        return version_in_force(policy_id, [e.policy for e in entries], on)

    def by_pk(self, pk: int) -> CatalogEntry:
        cached = self._compiled.get(pk)
        return cached if cached is not None else self._entry(self.policies.by_pk(pk))

    def _entry(self, stored: StoredPolicy) -> CatalogEntry:
        cached = self._compiled.get(stored.pk)
        if cached is not None:
            return cached
        parent = self.by_pk(stored.parent_pk) if stored.parent_pk else None
        document = read_policy(stored.source, stored.filename, self.taxonomy)
        policy = compile_policy(document, parent.policy if parent else None)
        if policy.content_hash != stored.content_hash:
            raise PolicyInvalid.single(
                stored.filename,
                f"{stored.policy_id}@{stored.version} no longer compiles to its stored hash "
                "(the taxonomy or the engine changed its meaning)",
            )
        parent_ref = f"{parent.policy.id}@{parent.policy.version}" if parent else ""
        entry = CatalogEntry(stored, policy, parent_ref)
        with self._lock:
            self._compiled[stored.pk] = entry
        return entry

    def latest(self, tenant: str) -> list[CatalogEntry]:
        latest: dict[str, StoredPolicy] = {}
        for stored in self.policies.versions(self.owners(tenant)):
            latest[stored.policy_id] = stored  # ordered by id, version
        return [self._entry(s) for _, s in sorted(latest.items())]

    def versions(self, tenant: str, reference: str) -> list[CatalogEntry]:
        policy_id, _ = parse_reference(reference, "name")
        stored = self.policies.versions(self.owners(tenant), policy_id)
        if not stored:
            raise NotFound("policy", policy_id)
        return [self._entry(s) for s in stored]

    @staticmethod
    def page(entries: list, page_size: int, page_token: str) -> tuple[list, str]:
        start, size = page_bounds(page_size, page_token)
        chunk = entries[start : start + size]
        end = start + len(chunk)
        return chunk, encode_offset(end) if end < len(entries) else ""

    # --- writing --------------------------------------------------------------

    def check(self, tenant: str, source: str, filename: str) -> tuple[Policy, StoredPolicy | None]:
        """Validates a document against what the tenant can see; returns it and its parent."""

        def parent_of(policy_id: str):
            entry = self.entry(tenant, policy_id, "extends")
            ancestors, walk = [], entry
            while walk is not None:
                ancestors.append(walk.policy.id)
                walk = self.by_pk(walk.stored.parent_pk) if walk.stored.parent_pk else None
            return entry.stored, entry.policy, ancestors

        return compile_checked(read_policy(source, filename, self.taxonomy), parent_of)

    def create(self, tenant: str, source: str, filename: str) -> CatalogEntry:
        policy, parent = self.check(tenant, source, filename)
        if policy.version != 1:
            raise InvalidArgument(
                [FieldViolation("source", f"a new policy starts at version 1, not {policy.version}")]
            )
        if self.policies.version(self.owners(tenant), policy.id) is not None:
            raise AlreadyExists("policy", policy.id)
        stored = self.policies.add(
            tenant, policy.id, 1, policy.content_hash, source, filename, parent.pk if parent else None
        )
        self._forget_latest(tenant, policy.id)
        return self._entry(stored)

    def update(
        self, tenant: str, reference: str, expected_version: int, source: str, filename: str
    ) -> CatalogEntry:
        policy_id, _ = parse_reference(reference, "name")
        current = self.policies.version(self.owners(tenant), policy_id)
        if current is None:
            raise NotFound("policy", policy_id)
        if current.owner != tenant:
            raise PermissionDenied(f"{policy_id} is a bundled policy: extend it in a policy of your own")
        policy, parent = self.check(tenant, source, filename)
        if policy.id != policy_id:
            raise InvalidArgument(
                [FieldViolation("source", f"the document is {policy.id!r}, not {policy_id!r}")]
            )
        if policy.version != expected_version + 1:
            raise InvalidArgument(
                [FieldViolation("source", f"version must be {expected_version + 1} (expected_version + 1)")]
            )
        stored = self.policies.add(
            tenant,
            policy_id,
            policy.version,
            policy.content_hash,
            source,
            filename,
            parent.pk if parent else None,
        )
        self._forget_latest(tenant, policy_id)
        return self._entry(stored)

    def _forget_latest(self, tenant: str, policy_id: str) -> None:
        with self._lock:
            self._lookups.pop((tenant, policy_id, None), None)

    def seed_bundled(self, library: PolicyLibrary) -> list[str]:
        """Stores the bundled policies missing from the store; returns what it added."""
        added: list[str] = []
        pending = list(library.all())
        while pending:
            progress = False
            for policy in list(pending):
                parent_pk = None
                if policy.extends:
                    parent = self.policies.version((SHARED,), policy.extends)
                    if parent is None or parent.content_hash != library.get(policy.extends).content_hash:
                        continue  # the parent goes first
                    parent_pk = parent.pk
                existing = self.policies.version((SHARED,), policy.id, policy.version)
                if existing is None:
                    self.policies.add(
                        SHARED,
                        policy.id,
                        policy.version,
                        policy.content_hash,
                        policy.source,
                        policy.filename.rsplit("/", 1)[-1],
                        parent_pk,
                        allow_gap=True,
                    )
                    added.append(f"{policy.id}@{policy.version}")
                elif existing.content_hash != policy.content_hash:
                    raise BundledPolicyChanged(
                        f"bundled policy {policy.id}@{policy.version} differs from the stored version; "
                        "give the changed file a new version number"
                    )
                pending.remove(policy)
                progress = True
            if not progress:
                raise BundledPolicyChanged(
                    "bundled policies' parents could not be stored: "
                    + ", ".join(f"{p.id}@{p.version}" for p in pending)
                )
        return added

    # --- diff -----------------------------------------------------------------

    def diff(
        self, tenant: str, base: str, target: str
    ) -> tuple[CatalogEntry, CatalogEntry, list[RuleChange]]:
        a, b = self.entry(tenant, base, "base"), self.entry(tenant, target, "target")
        return a, b, diff_policies(a.policy, b.policy)
