"""The decision log's hash chain: what an entry's hash covers, and checking a chain.

Each entry's hash covers the previous entry's hash and everything that makes
the decision reproducible (request, policy version hash, engine version,
as-of date, response), so altering, removing or reordering any stored entry
breaks every hash after it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class ChainEntry:
    owner: str
    seq: int
    decision_id: str
    policy_hash: str
    engine_version: str
    as_of: str
    created_at: str
    request: bytes
    response: bytes
    prev_hash: str
    entry_hash: str


def entry_hash(
    prev_hash: str,
    owner: str,
    seq: int,
    decision_id: str,
    policy_hash: str,
    engine_version: str,
    as_of: str,
    created_at: str,
    request: bytes,
    response: bytes,
) -> str:
    digest = hashlib.sha256()
    for part in (
        prev_hash,
        owner,
        str(seq),
        decision_id,
        policy_hash,
        engine_version,
        as_of,
        created_at,
        hashlib.sha256(request).hexdigest(),
        hashlib.sha256(response).hexdigest(),
    ):
        encoded = part.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    checked: int
    first_bad_seq: int = 0
    reason: str = ""


def verify(entries: Iterable[ChainEntry]) -> Verification:
    """Checks entries in chain order: links, sequence and each entry's own hash."""
    prev, expected_seq, checked = GENESIS, 1, 0
    for e in entries:
        if e.seq != expected_seq:
            return Verification(False, checked, e.seq, f"sequence jumps from {expected_seq - 1} to {e.seq}")
        if e.prev_hash != prev:
            return Verification(False, checked, e.seq, "does not link to the previous entry")
        recomputed = entry_hash(
            e.prev_hash,
            e.owner,
            e.seq,
            e.decision_id,
            e.policy_hash,
            e.engine_version,
            e.as_of,
            e.created_at,
            e.request,
            e.response,
        )
        if recomputed != e.entry_hash:
            return Verification(False, checked, e.seq, "its content does not match its hash")
        prev, expected_seq, checked = e.entry_hash, expected_seq + 1, checked + 1
    return Verification(True, checked)
