"""The files a deployment starts from: taxonomy, bundled policies, memo templates, shared evidence.

The application's setup reads them here, once, and hands their content to the
core, the memo renderer and the store: nothing below this layer opens a file.
"""

from __future__ import annotations

from pathlib import Path

from proxyvote.core.model import EvidenceRecord
from proxyvote.core.policy import read_policy
from proxyvote.core.policy_library import PolicyLibrary
from proxyvote.core.recommender import Recommender
from proxyvote.core.taxonomy import Taxonomy, parse_taxonomy
from proxyvote.errors import PolicyInvalid
from proxyvote.memo.render import TEMPLATE_NAMES
from proxyvote.wire import convert

TAXONOMY_FILE = "taxonomy.yaml"
MODEL_FILE = "taxonomy-model.json"


def read_model(policy_dir: Path) -> str | None:
    """The classifier model beside the taxonomy (``make model`` builds it), or None."""
    path = Path(policy_dir) / MODEL_FILE
    return path.read_text(encoding="utf-8") if path.exists() else None


def load_taxonomy(policy_dir: Path, model_text: str | None = None, with_model: bool = True) -> Taxonomy:
    """The taxonomy beside the policies (``taxonomy.yaml``), with the classifier model when it
    was built; without it items are placed by the rules alone (and the taxonomy hash says so).
    ``model_text`` stands in for the built model (held-out evaluation)."""
    path = Path(policy_dir) / TAXONOMY_FILE
    if model_text is None and with_model:
        model_text = read_model(policy_dir)
    return parse_taxonomy(path.read_text(encoding="utf-8"), str(path), model_text)


def load_policy_library(policy_dir: Path, taxonomy: Taxonomy) -> PolicyLibrary:
    """Every ``*.yaml`` in the folder but the taxonomy, validated; all problems at once."""
    documents, problems = [], []
    for path in sorted(Path(policy_dir).glob("*.yaml")):
        if path.name == TAXONOMY_FILE:
            continue
        try:
            documents.append(read_policy(path.read_text(encoding="utf-8"), str(path), taxonomy))
        except PolicyInvalid as exc:
            problems.extend(exc.problems)
    if problems:
        raise PolicyInvalid(problems)
    return PolicyLibrary.from_documents(documents)


def load_recommender(policy_dir: Path) -> Recommender:
    """A recommender over the policy files themselves (the CLI in-process, policy tests, backtests)."""
    taxonomy = load_taxonomy(policy_dir)
    return Recommender(load_policy_library(policy_dir, taxonomy), taxonomy)


def load_templates(template_dir: Path) -> dict[str, str]:
    """The memo templates, name -> source."""
    return {name: (Path(template_dir) / name).read_text(encoding="utf-8") for name in TEMPLATE_NAMES}


def load_evidence(paths) -> tuple[EvidenceRecord, ...]:
    """The records of evidence files in order; the first file naming a record wins."""
    records: dict[str, EvidenceRecord] = {}
    for path in paths:
        for record in convert.evidence_from_json(Path(path).read_text(encoding="utf-8"), str(path)):
            records.setdefault(record.evidence_id, record)
    return tuple(records.values())


def evidence_files(directory: Path) -> list[Path]:
    return sorted(Path(directory).glob("*.json"))
