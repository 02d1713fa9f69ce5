"""Settings: one object, built from the environment and the command's flags.

The only module that reads the environment. Every setting has one row in
``SETTINGS`` (its field, environment variable, default and meaning); the
README's table and ``proxyvote serve --help`` are made from those rows.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

from proxyvote.errors import ConfigurationError

TRUE = frozenset({"1", "true", "yes"})
FALSE = frozenset({"", "0", "false", "no"})


def repository_root() -> Path:
    """The checkout the package runs from (policies, templates and demo evidence live there)."""
    return Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True)
class Setting:
    field: str
    env: str
    default: str
    help: str
    kind: type = str


SETTINGS: tuple[Setting, ...] = (
    Setting("addr", "PROXYVOTE_ADDR", "127.0.0.1:50051", "address the server listens on (HOST:PORT)"),
    Setting(
        "database_url",
        "DATABASE_URL",
        "sqlite:///var/proxyvote.db",
        "SQLAlchemy URL of the store (PostgreSQL: postgresql+psycopg://user@host:5432/db)",
    ),
    Setting("policy_dir", "PROXYVOTE_POLICY_DIR", "policies/", "bundled policies and taxonomy.yaml", Path),
    Setting("template_dir", "PROXYVOTE_TEMPLATE_DIR", "reports/templates/", "memo templates", Path),
    Setting(
        "evidence_dir",
        "PROXYVOTE_EVIDENCE_DIR",
        "examples/evidence/",
        "shared evidence files (*.json) loaded at first start",
        Path,
    ),
    Setting("workers", "PROXYVOTE_WORKERS", "0", "server processes on one port (0: one per core)", int),
    Setting(
        "max_concurrent_rpcs",
        "PROXYVOTE_MAX_CONCURRENT_RPCS",
        "16",
        "calls in flight per process; past it a call gets RESOURCE_EXHAUSTED at once",
        int,
    ),
    Setting(
        "retry_after_ms", "PROXYVOTE_RETRY_AFTER_MS", "200", "retry hint sent with RESOURCE_EXHAUSTED", int
    ),
    Setting(
        "classification_cache_mb", "PROXYVOTE_CLASSIFICATION_CACHE_MB", "64", "classified wordings kept", int
    ),
    Setting(
        "outcome_cache_mb",
        "PROXYVOTE_OUTCOME_CACHE_MB",
        "64",
        "decided outcomes kept, per policy version",
        int,
    ),
    Setting("response_cache_mb", "PROXYVOTE_RESPONSE_CACHE_MB", "32", "serialised response parts kept", int),
    Setting("evidence_cache_mb", "PROXYVOTE_EVIDENCE_CACHE_MB", "16", "stored evidence kept per issuer", int),
    Setting("max_workers", "PROXYVOTE_MAX_WORKERS", "0", "threads serving RPCs (0: the call limit + 4)", int),
    Setting("grace", "PROXYVOTE_GRACE", "5", "seconds in-flight calls may finish after SIGTERM", float),
    Setting("metrics_addr", "PROXYVOTE_METRICS_ADDR", "", "Prometheus metrics on HOST:PORT (unset: off)"),
    Setting("log_format", "PROXYVOTE_LOG_FORMAT", "json", "server logs: json (one object a line) or text"),
    Setting("otel", "PROXYVOTE_OTEL", "0", "OpenTelemetry spans for every call (proxyvote[otel])", bool),
    Setting("tls_cert", "PROXYVOTE_TLS_CERT", "", "server certificate chain (PEM); with the key, TLS"),
    Setting("tls_key", "PROXYVOTE_TLS_KEY", "", "server private key (PEM)"),
    Setting("tls_client_ca", "PROXYVOTE_TLS_CLIENT_CA", "", "require client certificates of this CA (mTLS)"),
    Setting(
        "allow_plaintext", "PROXYVOTE_ALLOW_PLAINTEXT", "0", "plaintext on a non-loopback address too", bool
    ),
    Setting("client_tls", "PROXYVOTE_TLS", "0", "client: TLS, verifying the server with system roots", bool),
    Setting("client_tls_ca", "PROXYVOTE_TLS_CA", "", "client: TLS, verifying the server with this CA"),
    Setting("client_tls_cert", "PROXYVOTE_TLS_CLIENT_CERT", "", "client: certificate for mTLS (PEM)"),
    Setting("client_tls_key", "PROXYVOTE_TLS_CLIENT_KEY", "", "client: key for mTLS (PEM)"),
    Setting("client_tls_server_name", "PROXYVOTE_TLS_SERVER_NAME", "", "client: name the server cert bears"),
    Setting("api_key", "PROXYVOTE_API_KEY", "", "client: the tenant's API key (proxyvote tenant create)"),
)


@dataclasses.dataclass(frozen=True)
class Settings:
    addr: str
    database_url: str
    policy_dir: Path
    template_dir: Path
    evidence_dir: Path
    workers: int
    max_concurrent_rpcs: int
    retry_after_ms: int
    classification_cache_mb: int
    outcome_cache_mb: int
    response_cache_mb: int
    evidence_cache_mb: int
    max_workers: int
    grace: float
    metrics_addr: str
    log_format: str
    otel: bool
    tls_cert: str
    tls_key: str
    tls_client_ca: str
    allow_plaintext: bool
    client_tls: bool
    client_tls_ca: str
    client_tls_cert: str
    client_tls_key: str = dataclasses.field(repr=False)
    client_tls_server_name: str
    api_key: str = dataclasses.field(repr=False)

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **flags) -> Settings:
        """Defaults, then the environment, then flags (those not None) win."""
        environ = os.environ if environ is None else environ
        values = {}
        for s in SETTINGS:
            flag = flags.pop(s.field, None)
            raw = flag if flag is not None else environ.get(s.env, s.default)
            source = "flag" if flag is not None else s.env
            values[s.field] = _parse(s, raw, source)
        if flags:
            raise TypeError(f"unknown settings: {', '.join(sorted(flags))}")
        return cls(**values)

    def replace(self, **changes) -> Settings:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def _parse(setting: Setting, raw, source: str):
    if not isinstance(raw, str):
        return raw
    if setting.kind is bool:
        value = raw.strip().lower()
        if value in TRUE:
            return True
        if value in FALSE:
            return False
        raise ConfigurationError(f"{source}={raw!r}: expected 1/true/yes or 0/false/no")
    if setting.kind is Path:
        path = Path(raw)
        return path if path.is_absolute() else repository_root() / path if raw == setting.default else path
    if setting.kind in (int, float):
        try:
            return setting.kind(raw)
        except ValueError:
            raise ConfigurationError(f"{source}={raw!r}: expected a number") from None
    return raw


def markdown_table() -> str:
    """The README's table of settings."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    rows += [f"| `{s.env}` | `{s.default}` | {s.help} |" for s in SETTINGS]
    return "\n".join(rows)


def help_text() -> str:
    """The settings, for ``proxyvote serve --help``."""
    width = max(len(s.env) for s in SETTINGS)
    return "settings (environment; a flag wins):\n" + "\n".join(
        f"  {s.env.ljust(width)}  {s.help} (default: {s.default or 'unset'})" for s in SETTINGS
    )
