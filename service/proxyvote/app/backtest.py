"""Running backtests: in-process, on local processes or on a Dask cluster.

The work is the pure ``core.backtest.run_backtest``. What travels to a worker
is text and plain values, never compiled objects: the taxonomy's text, each
policy version's source with its parent's (``VersionSource``), the evidence
records and a partition of the meetings. A worker compiles them once per
process (and checks each version compiles to the hash it was sent with), so a
worker on another machine decides with exactly the policies the caller chose.

Partitions are either meetings in memory (``MeetingsPart``: what the store
gives) or a byte range of a JSON-lines file of meetings (``FilePart``: the
synthetic universe, read by the worker itself, so a million items are not
pickled through the scheduler; on a remote cluster the file must be at the
same path on every worker). Each partition gives a ``Tally``; tallies are
merged in partition order and the what-if list is sorted, so the figures are
the same whatever ran where.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from proxyvote.core.backtest import (
    BACKTEST_VERSION,
    DEFAULT_LEAD_DAYS,
    PolicyChoice,
    Tally,
    figures,
    run_backtest,
)
from proxyvote.core.model import EvidenceRecord, Meeting
from proxyvote.core.policy import Policy, compile_policy, read_policy
from proxyvote.core.policy_library import PolicyLibrary, parse_reference
from proxyvote.core.recommender import Recommender
from proxyvote.core.taxonomy import parse_taxonomy
from proxyvote.errors import FieldViolation, InvalidArgument, PolicyInvalid

# Meetings per partition: small enough to spread over the cores and report
# progress, large enough that scheduling costs little.
MEETINGS_PER_PART = 2_000


@dataclass(frozen=True)
class VersionSource:
    """One policy version as text, with its parent's, as it travels to a worker."""

    id: str
    version: int
    filename: str
    text: str
    content_hash: str
    effective_from: str  # "" when in force from the start
    parent: VersionSource | None = None


@dataclass(frozen=True)
class WorkSpec:
    """Everything a worker needs besides the meetings."""

    taxonomy_text: str
    taxonomy_name: str
    taxonomy_hash: str
    choices: tuple[tuple[str, tuple[VersionSource, ...]], ...]  # (label, versions ascending)
    evidence: tuple[EvidenceRecord, ...] = ()
    lead_days: int = DEFAULT_LEAD_DAYS
    with_rows: bool = False
    # The classifier model beside the taxonomy (part of its hash), when there is one.
    model_text: str | None = None

    @property
    def key(self) -> str:
        digest = hashlib.sha256(self.taxonomy_hash.encode())
        for label, versions in self.choices:
            digest.update(label.encode())
            for v in versions:
                digest.update(v.content_hash.encode())
        return digest.hexdigest()

    def inputs(self) -> dict:
        """The run's inputs as stored and reported (selection added by the caller)."""
        return {
            "policies": [
                {
                    "policy": label,
                    "pinned": parse_reference(label)[1] is not None,
                    "versions": [
                        {
                            "id": v.id,
                            "version": v.version,
                            "content_hash": v.content_hash,
                            "effective_from": v.effective_from or None,
                        }
                        for v in versions
                    ],
                }
                for label, versions in self.choices
            ],
            "lead_days": self.lead_days,
            "engine": BACKTEST_VERSION,
            "taxonomy_hash": self.taxonomy_hash,
            "evidence_records": len(self.evidence),
        }


@dataclass(frozen=True)
class MeetingsPart:
    meetings: tuple[Meeting, ...]

    @property
    def size(self) -> int:
        return len(self.meetings)


@dataclass(frozen=True)
class FilePart:
    """Lines ``[start, end)`` (byte offsets on line boundaries) of a JSON-lines meetings file."""

    path: str
    start: int
    end: int
    size: int  # meetings in the range
    synthetic: bool = True
    # The selection, applied as the worker reads ("" for none): YYYY-MM-DD bounds, an issuer.
    date_from: str = ""
    date_to: str = ""
    issuer: str = ""


@dataclass
class Result:
    tally: Tally
    rows: list = field(default_factory=list)

    def figures(self) -> dict:
        return figures(self.tally)


# --- the spec -------------------------------------------------------------------


def version_source(policy: Policy, parent_of: Callable[[Policy], Policy | None]) -> VersionSource:
    parent = parent_of(policy)
    return VersionSource(
        policy.id,
        policy.version,
        policy.filename.rsplit("/", 1)[-1],
        policy.source,
        policy.content_hash,
        policy.effective_from.isoformat() if policy.effective_from else "",
        version_source(parent, parent_of) if parent is not None else None,
    )


def spec_from_library(
    library: PolicyLibrary,
    taxonomy_text: str,
    taxonomy_name: str,
    taxonomy_hash: str,
    references: Iterable[str],
    evidence: tuple[EvidenceRecord, ...] = (),
    lead_days: int = DEFAULT_LEAD_DAYS,
    with_rows: bool = False,
    model_text: str | None = None,
) -> WorkSpec:
    """The spec for the policy files (a library resolves ``extends`` to the parent's latest version)."""

    def parent_of(policy: Policy) -> Policy | None:
        return library.get(policy.extends, "extends") if policy.extends else None

    choices = []
    for n, reference in enumerate(references):
        policy_id, version = parse_reference(reference, f"policies[{n}]")
        if version is not None:
            versions = [library.get(reference, f"policies[{n}]")]
        else:
            library.get(policy_id, f"policies[{n}]")  # NotFound when unknown
            versions = [p for p in library.all() if p.id == policy_id]
        choices.append((reference.strip(), tuple(version_source(p, parent_of) for p in versions)))
    return _checked(
        WorkSpec(
            taxonomy_text,
            taxonomy_name,
            taxonomy_hash,
            tuple(choices),
            evidence,
            lead_days,
            with_rows,
            model_text,
        )
    )


def spec_from_catalog(
    catalog,
    tenant: str,
    taxonomy_text: str,
    taxonomy_name: str,
    references: Iterable[str],
    evidence: tuple[EvidenceRecord, ...] = (),
    lead_days: int = DEFAULT_LEAD_DAYS,
    with_rows: bool = False,
    model_text: str | None = None,
) -> WorkSpec:
    """The spec for the policies a tenant sees in the store (each version with its stored parent)."""

    def parent_of(policy: Policy) -> Policy | None:
        entry = catalog.entry(tenant, f"{policy.id}@{policy.version}")
        return catalog.by_pk(entry.stored.parent_pk).policy if entry.stored.parent_pk else None

    choices = []
    for n, reference in enumerate(references):
        policy_id, version = parse_reference(reference, f"policies[{n}]")
        if version is not None:
            versions = [catalog.entry(tenant, reference, f"policies[{n}]").policy]
        else:
            versions = [e.policy for e in catalog.versions(tenant, policy_id)]
        choices.append((reference.strip(), tuple(version_source(p, parent_of) for p in versions)))
    return _checked(
        WorkSpec(
            taxonomy_text,
            taxonomy_name,
            catalog.taxonomy.content_hash,
            tuple(choices),
            evidence,
            lead_days,
            with_rows,
            model_text,
        )
    )


def _checked(spec: WorkSpec) -> WorkSpec:
    labels = [label for label, _ in spec.choices]
    violations = []
    if not labels:
        violations.append(FieldViolation("policies", "name at least one policy"))
    seen = set()
    for n, label in enumerate(labels):
        if label in seen:
            violations.append(FieldViolation(f"policies[{n}]", f"{label!r} is named twice"))
        seen.add(label)
    if not 0 <= spec.lead_days <= 366:
        violations.append(FieldViolation("lead_days", "must be between 0 and 366"))
    if violations:
        raise InvalidArgument(violations)
    return spec


def spec_for_files(
    policy_dir: str | Path,
    references: Iterable[str],
    evidence: tuple[EvidenceRecord, ...] = (),
    lead_days: int = DEFAULT_LEAD_DAYS,
    with_rows: bool = False,
) -> WorkSpec:
    """The spec for the policy files in a folder, with its taxonomy and classifier model."""
    from proxyvote.app.files import load_policy_library, load_taxonomy, read_model

    policy_dir = Path(policy_dir)
    model_text = read_model(policy_dir)
    taxonomy = load_taxonomy(policy_dir, model_text)
    path = policy_dir / "taxonomy.yaml"
    return spec_from_library(
        load_policy_library(policy_dir, taxonomy),
        path.read_text(encoding="utf-8"),
        path.name,
        taxonomy.content_hash,
        references,
        evidence,
        lead_days,
        with_rows,
        model_text,
    )


# --- a worker -------------------------------------------------------------------

_PREPARED: dict[str, tuple[Recommender, tuple[PolicyChoice, ...]]] = {}


def prepare(spec: WorkSpec) -> tuple[Recommender, tuple[PolicyChoice, ...]]:
    """The recommender and compiled choices of a spec, compiled once per process."""
    found = _PREPARED.get(spec.key)
    if found is not None:
        return found
    taxonomy = parse_taxonomy(spec.taxonomy_text, spec.taxonomy_name, spec.model_text)
    if taxonomy.content_hash != spec.taxonomy_hash:
        raise PolicyInvalid.single(spec.taxonomy_name, "the taxonomy sent does not match its hash")
    compiled: dict[tuple[str, int], Policy] = {}

    def build(v: VersionSource) -> Policy:
        key = (v.id, v.version)
        if key not in compiled:
            parent = build(v.parent) if v.parent is not None else None
            policy = compile_policy(read_policy(v.text, v.filename, taxonomy), parent)
            if policy.content_hash != v.content_hash:
                raise PolicyInvalid.single(v.filename, f"{v.id}@{v.version} does not compile to its hash")
            compiled[key] = policy
        return compiled[key]

    choices = tuple(
        PolicyChoice(label, tuple(build(v) for v in versions)) for label, versions in spec.choices
    )
    recommender = Recommender(PolicyLibrary(list(compiled.values())), taxonomy)
    if len(_PREPARED) > 8:
        _PREPARED.clear()
    _PREPARED[spec.key] = (recommender, choices)
    return recommender, choices


@contextlib.contextmanager
def no_gc_pauses():
    """The cyclic garbage collector off while millions of acyclic values are built: its full
    passes walk every live object, again and again, as the heap grows (the run makes no cycles
    worth collecting; reference counting frees the rest)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_part(part) -> list[Meeting]:
    """A partition's meetings (a worker keeps them when a cluster loads them once for many runs)."""
    with no_gc_pauses():
        return list(part.meetings) if isinstance(part, MeetingsPart) else read_part(part)


def run_part(spec: WorkSpec, part, progress: Callable[[int], None] | None = None) -> Result:
    """One partition's tally (and rows when the spec asks for them); ``part`` may be loaded meetings."""
    recommender, choices = prepare(spec)
    meetings = part if isinstance(part, list) else load_part(part)
    rows: list | None = [] if spec.with_rows else None
    with no_gc_pauses():
        tally = run_backtest(meetings, choices, recommender, spec.evidence, spec.lead_days, progress, rows)
    return Result(tally, rows or [])


def read_part(part: FilePart) -> list[Meeting]:
    with open(part.path, "rb") as stream:
        stream.seek(part.start)
        data = stream.read(part.end - part.start)
    text = data.decode("utf-8")
    if part.synthetic:  # our own file: one meeting per line, no blank lines
        from proxyvote.app.synth import meetings_from_dicts

        meetings = meetings_from_dicts(json.loads("[" + text.strip().replace("\n", ",") + "]"))
    else:
        from proxyvote.wire import convert

        lines = [line for line in text.split("\n") if line.strip()]

        meetings = [convert.meeting_from_json(line, f"{part.path} (byte {part.start})") for line in lines]
    if part.date_from or part.date_to or part.issuer:
        selection = Selection(
            dt.date.fromisoformat(part.date_from) if part.date_from else None,
            dt.date.fromisoformat(part.date_to) if part.date_to else None,
            part.issuer,
        )
        meetings = [m for m in meetings if selection.holds(m)]
    return meetings


# --- partitions -------------------------------------------------------------------


def meeting_parts(meetings: list[Meeting], per_part: int = MEETINGS_PER_PART) -> list[MeetingsPart]:
    ordered = sorted(meetings, key=lambda m: (m.meeting_date, m.meeting_id, m.issuer.name))
    return [MeetingsPart(tuple(ordered[i : i + per_part])) for i in range(0, len(ordered), per_part)]


def file_parts(path: str | Path, parts: int, synthetic: bool = True) -> list[FilePart]:
    """Cuts a JSON-lines file into about ``parts`` byte ranges on line boundaries."""
    path = str(path)
    data = Path(path).read_bytes()
    size = len(data)
    bounds = [0]
    for k in range(1, max(1, parts)):
        cut = data.find(b"\n", size * k // parts)
        cut = size if cut < 0 else cut + 1
        if cut > bounds[-1] and cut < size:
            bounds.append(cut)
    bounds.append(size)
    out = []
    for start, end in zip(bounds, bounds[1:], strict=False):
        count = data.count(b"\n", start, end) + (0 if data[start:end].endswith(b"\n") or end == start else 1)
        if end > start:
            out.append(FilePart(path, start, end, count, synthetic))
    return out


# --- running --------------------------------------------------------------------


def run_local(spec: WorkSpec, parts: list, progress: Callable[[int, int], None] | None = None) -> Result:
    """Every partition in this process, in order."""
    total = sum(p.size for p in parts)
    result = Result(_empty(spec))
    done = 0
    for part in parts:
        base = done

        def tick(n: int, base=base) -> None:
            if progress is not None and (n % 50 == 0):
                progress(base + n, total)

        partial = run_part(spec, part, tick)
        done += part.size
        if progress is not None:
            progress(done, total)
        result.tally.merge(partial.tally)
        result.rows.extend(partial.rows)
    return result


def run_dask(
    spec: WorkSpec,
    parts: list,
    scheduler: str | None = None,
    workers: int | None = None,
    processes: bool = True,
    progress: Callable[[int, int], None] | None = None,
    client=None,
    loaded: list | None = None,
) -> Result:
    """The partitions on a Dask cluster: ``scheduler`` (tcp://HOST:PORT), a given client,
    or a LocalCluster of ``workers`` processes (default: one per core). ``loaded``: the
    futures of ``load_on_workers(client, parts)``, to run on meetings the workers hold."""
    from dask.distributed import Client, LocalCluster, as_completed

    if progress is not None:
        progress(0, sum(p.size for p in parts))
    own = None
    if client is None:
        if scheduler:
            own = client = Client(scheduler)
        else:
            cluster = LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=processes, dashboard_address=None
            )
            own = client = Client(cluster)
    try:
        total = sum(p.size for p in parts)
        remote_spec = client.scatter(spec, broadcast=True, hash=False)
        inputs = loaded if loaded is not None else parts
        futures = {client.submit(run_part, remote_spec, part, pure=False): n for n, part in enumerate(inputs)}
        results: dict[int, Result] = {}
        done = 0
        for future in as_completed(futures):
            n = futures[future]
            results[n] = future.result()
            done += parts[n].size
            if progress is not None:
                progress(done, total)
    finally:
        if own is not None:
            cluster = getattr(own, "cluster", None)
            own.close()
            if cluster is not None:
                cluster.close()
    merged = Result(_empty(spec))
    for n in sorted(results):
        merged.tally.merge(results[n].tally)
        merged.rows.extend(results[n].rows)
    return merged


def load_on_workers(client, parts: list) -> list:
    """Each partition read by a worker and kept there (futures), for runs over the same meetings."""
    from dask.distributed import wait

    futures = [client.submit(load_part, part, pure=False) for part in parts]
    wait(futures)
    return futures


def _empty(spec: WorkSpec) -> Tally:
    return Tally(tuple(label for label, _ in spec.choices))


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def figures_hash(figures_: dict) -> str:
    return hashlib.sha256(canonical_json(figures_).encode()).hexdigest()


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


# --- the application's backtests (the store's past meetings) ----------------------

# Below this many meetings a run stays in the calling process: starting worker
# processes costs more than it saves.
LOCAL_BELOW = 2 * MEETINGS_PER_PART


@dataclass(frozen=True)
class Selection:
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    issuer: str = ""

    def holds(self, meeting: Meeting) -> bool:
        """Whether a meeting is selected (for meetings read from files; the store selects its own)."""
        if self.date_from and meeting.meeting_date < self.date_from:
            return False
        if self.date_to and meeting.meeting_date > self.date_to:
            return False
        if self.issuer:
            wanted = "".join(self.issuer.split()).casefold()
            i = meeting.issuer
            codes = {
                "".join(v.split()).casefold()
                for v in (i.ticker, i.isin, i.cusip, getattr(i, "figi", ""))
                if v
            }
            if wanted not in codes and " ".join(self.issuer.split()).casefold() != i.name.casefold():
                return False
        return True

    def as_dict(self) -> dict:
        return {
            "date_from": self.date_from.isoformat() if self.date_from else None,
            "date_to": self.date_to.isoformat() if self.date_to else None,
            "issuer": self.issuer or None,
        }


def execute(
    spec: WorkSpec,
    parts: list,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Result:
    """In this process for a small run (or ``workers == 0``), else on Dask: the scheduler
    given, or local processes, one per core."""
    total = sum(p.size for p in parts)
    if not scheduler and (workers == 0 or (workers is None and total < LOCAL_BELOW) or len(parts) < 2):
        return run_local(spec, parts, progress)
    return run_dask(spec, parts, scheduler=scheduler, workers=workers, progress=progress)


class Backtests:
    """Backtests over the store's past meetings, stored with their inputs and figures."""

    def __init__(
        self, store, catalog, taxonomy_text: str, taxonomy_name: str = "taxonomy.yaml", model_text=None
    ):
        self.store = store
        self.catalog = catalog
        self.taxonomy_text = taxonomy_text
        self.taxonomy_name = taxonomy_name
        self.model_text = model_text

    @classmethod
    def from_app(cls, app) -> Backtests:
        from proxyvote.app.files import read_model

        path = Path(app.settings.policy_dir) / "taxonomy.yaml"
        return cls(
            app.store,
            app.catalog,
            path.read_text(encoding="utf-8"),
            path.name,
            read_model(app.settings.policy_dir),
        )

    def owners(self, tenant: str) -> tuple[str, ...]:
        return self.catalog.owners(tenant)

    def run(
        self,
        tenant: str,
        references: list[str],
        selection: Selection = Selection(),
        lead_days: int = DEFAULT_LEAD_DAYS,
        progress: Callable[[int, int], None] | None = None,
        scheduler: str | None = None,
        workers: int | None = None,
        with_rows: bool = False,
    ):
        """Runs and stores a backtest; returns (the stored run, the rows when asked)."""
        owners = self.owners(tenant)
        meetings = self.store.meetings.select(
            owners, selection.date_from, selection.date_to, selection.issuer or None
        )
        evidence: dict[str, EvidenceRecord] = {}
        seen = set()
        for meeting in meetings:
            key = (meeting.issuer.ticker.casefold(), meeting.issuer.name.casefold())
            if key in seen:
                continue
            seen.add(key)
            for record in self.store.evidence.about(owners, meeting.issuer.ticker, meeting.issuer.name):
                evidence.setdefault(record.evidence_id, record)
        records = tuple(sorted(evidence.values(), key=lambda r: (r.published, r.evidence_id)))
        spec = spec_from_catalog(
            self.catalog,
            tenant,
            self.taxonomy_text,
            self.taxonomy_name,
            references,
            records,
            lead_days,
            with_rows,
            self.model_text,
        )
        if progress is not None:
            progress(0, len(meetings))
        result = execute(spec, meeting_parts(meetings), scheduler, workers, progress)
        inputs = spec.inputs() | {
            "selection": selection.as_dict()
            | {"owners": list(owners), "source": "store", "meetings": len(meetings)}
        }
        stored = self.store.backtests.add(tenant, inputs, result.figures())
        return stored, result.rows

    def get(self, tenant: str, backtest_id: str):
        return self.store.backtests.get(self.owners(tenant), backtest_id)
