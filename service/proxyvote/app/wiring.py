"""Everything a running service holds, built once from its settings."""

from __future__ import annotations

from dataclasses import dataclass

from proxyvote.app.decision_log import DecisionLog
from proxyvote.app.evidence_store import EvidenceStore
from proxyvote.app.files import (
    evidence_files,
    load_evidence,
    load_policy_library,
    load_taxonomy,
    load_templates,
)
from proxyvote.app.policy_catalog import PolicyCatalog
from proxyvote.core.policy import set_outcome_memo_bytes
from proxyvote.core.recommender import Recommender
from proxyvote.errors import NotMigrated
from proxyvote.memo.render import MemoRenderer
from proxyvote.settings import Settings
from proxyvote.store import SHARED, Store, open_store
from proxyvote.store.schema import current_revision, head_revision
from proxyvote.wire import convert


@dataclass(frozen=True)
class App:
    settings: Settings
    store: Store
    catalog: PolicyCatalog
    recommender: Recommender
    log: DecisionLog
    evidence: EvidenceStore
    memos: MemoRenderer

    def close(self) -> None:
        self.store.close()


def build_app(settings: Settings | None = None) -> App:
    """Opens the store (which must be migrated), reads the files, stores missing bundled
    policies and the shared evidence, and wires the rest."""
    settings = settings or Settings.load()
    store = open_store(settings.database_url)
    try:
        current, head = current_revision(store.engine), head_revision()
        if current != head:
            raise NotMigrated(f"at {current or 'nothing'}, needs {head}")
        # The caches' budgets, before anything is compiled or cached.
        set_outcome_memo_bytes(settings.outcome_cache_mb << 20)
        convert.set_cache_bytes(settings.response_cache_mb << 20)
        taxonomy = load_taxonomy(settings.policy_dir)
        catalog = PolicyCatalog(store.policies, taxonomy)
        catalog.seed_bundled(load_policy_library(settings.policy_dir, taxonomy))
        recommender = Recommender(catalog, taxonomy, settings.classification_cache_mb << 20)
        evidence = EvidenceStore(store.evidence, settings.evidence_cache_mb << 20)
        evidence.import_records(SHARED, load_evidence(evidence_files(settings.evidence_dir)))
        memos = MemoRenderer(load_templates(settings.template_dir))
    except BaseException:
        store.close()
        raise
    return App(
        settings,
        store,
        catalog,
        recommender,
        DecisionLog(recommender, catalog, store.decisions, evidence),
        evidence,
        memos,
    )
