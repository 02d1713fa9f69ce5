"""Everything a running service holds, built once from its configuration."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from proxyvote.api.auth import Authenticator
from proxyvote.app.decision_log import DecisionLog
from proxyvote.app.evidence_store import EvidenceStore
from proxyvote.app.policy_catalog import PolicyCatalog
from proxyvote.core.recommender import Recommender, default_policy_dir, load_taxonomy, repository_root
from proxyvote.errors import ProxyvoteError
from proxyvote.store import DEFAULT_SQLITE_URL, Store, current_revision, head_revision, open_store


class NotMigrated(ProxyvoteError):
    template = "the database is not at the current schema ({detail}): run `proxyvote db upgrade`"


def shared_evidence_dir() -> Path:
    """The shared evidence loaded at first start: PROXYVOTE_EVIDENCE_DIR, else the demo records."""
    return Path(os.environ.get("PROXYVOTE_EVIDENCE_DIR") or repository_root() / "examples" / "evidence")


def database_url() -> str:
    return os.environ.get("DATABASE_URL") or DEFAULT_SQLITE_URL


@dataclass(frozen=True)
class App:
    store: Store
    catalog: PolicyCatalog
    recommender: Recommender
    log: DecisionLog
    auth: Authenticator
    evidence: EvidenceStore

    def close(self) -> None:
        self.store.close()


def build_app(url: str | None = None, policy_dir: Path | None = None) -> App:
    """Opens the store (which must be migrated), stores missing bundled policies, wires the rest."""
    store = open_store(url or database_url())
    current, head = current_revision(store.engine), head_revision()
    if current != head:
        store.close()
        raise NotMigrated(f"at {current or 'nothing'}, needs {head}")
    directory = Path(policy_dir or default_policy_dir())
    taxonomy = load_taxonomy(directory)
    catalog = PolicyCatalog(store, taxonomy)
    catalog.seed_bundled(directory)
    recommender = Recommender(catalog, taxonomy)
    evidence = EvidenceStore(store)
    evidence.seed_shared(shared_evidence_dir())
    return App(
        store,
        catalog,
        recommender,
        DecisionLog(recommender, catalog, store, evidence),
        Authenticator(store.tenant_for_key),
        evidence,
    )
