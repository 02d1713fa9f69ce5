"""Tables. Rows of policy versions, decisions and overrides are never updated."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    # sha256 of the key; the key itself is shown once and never stored.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class PolicyVersion(Base):
    """An immutable policy version. ``owner`` is a tenant id, or "" for bundled ones."""

    __tablename__ = "policy_versions"
    __table_args__ = (UniqueConstraint("owner", "policy_id", "version"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(40), index=True)
    policy_id: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text)
    filename: Mapped[str] = mapped_column(String(300))
    parent_pk: Mapped[int | None] = mapped_column(ForeignKey("policy_versions.pk"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class MeetingRecord(Base):
    """A meeting as a caller sent it, once per distinct content and owner."""

    __tablename__ = "meetings"
    __table_args__ = (UniqueConstraint("owner", "content_hash"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(40), index=True)
    meeting_id: Mapped[str] = mapped_column(String(200), index=True)
    issuer_name: Mapped[str] = mapped_column(String(4000))
    ticker: Mapped[str] = mapped_column(String(40))
    meeting_date: Mapped[dt.date] = mapped_column(Date)
    content_hash: Mapped[str] = mapped_column(String(64))
    # The Meeting message, serialized deterministically.
    body: Mapped[bytes] = mapped_column(LargeBinary)


class BallotItemRecord(Base):
    __tablename__ = "ballot_items"
    __table_args__ = (UniqueConstraint("meeting_pk", "position"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    meeting_pk: Mapped[int] = mapped_column(ForeignKey("meetings.pk"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    item_id: Mapped[str] = mapped_column(String(200))
    number: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(Text)
    proponent_kind: Mapped[str] = mapped_column(String(20))
    board_recommendation: Mapped[str] = mapped_column(String(20))


class Decision(Base):
    """One Recommend call, append-only, chained per owner by hash."""

    __tablename__ = "decisions"
    __table_args__ = (UniqueConstraint("owner", "chain_seq"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    decision_id: Mapped[str] = mapped_column(String(40), unique=True)
    owner: Mapped[str] = mapped_column(String(40), index=True)
    chain_seq: Mapped[int] = mapped_column(Integer)
    meeting_pk: Mapped[int] = mapped_column(ForeignKey("meetings.pk"), index=True)
    policy_pk: Mapped[int] = mapped_column(ForeignKey("policy_versions.pk"), index=True)
    policy_hash: Mapped[str] = mapped_column(String(64))
    engine_version: Mapped[str] = mapped_column(String(100))
    as_of: Mapped[dt.date] = mapped_column(Date)
    # The request as evaluated (as_of filled in), its evidence included.
    request: Mapped[bytes] = mapped_column(LargeBinary)
    # The RecommendResponse, serialized deterministically.
    response: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class Override(Base):
    """An analyst's change of one item's vote; points at the decision it overrides."""

    __tablename__ = "overrides"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    override_id: Mapped[str] = mapped_column(String(40), unique=True)
    owner: Mapped[str] = mapped_column(String(40), index=True)
    decision_pk: Mapped[int] = mapped_column(ForeignKey("decisions.pk"), index=True)
    item_id: Mapped[str] = mapped_column(String(200))
    vote: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    analyst: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class EvidenceRow(Base):
    """A dated evidence record. ``owner`` is a tenant id, or "" for the shared set.

    Records are never changed: a correction is a new record with its own id.
    """

    __tablename__ = "evidence"
    __table_args__ = (UniqueConstraint("owner", "evidence_id"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(40), index=True)
    evidence_id: Mapped[str] = mapped_column(String(200))
    issuer_name: Mapped[str] = mapped_column(String(4000))
    issuer_ticker: Mapped[str] = mapped_column(String(40), index=True)
    published: Mapped[dt.date] = mapped_column(Date)
    content_hash: Mapped[str] = mapped_column(String(64))
    # The EvidenceRecord message, serialized deterministically.
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class MemoTemplate(Base):
    """A tenant's own memo template (checked before it is stored); the latest upload is used."""

    __tablename__ = "memo_templates"
    __table_args__ = (UniqueConstraint("owner", "name", "version"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(40), index=True)
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class PastMeeting(Base):
    """A past meeting for backtests: one row per owner and meeting, merged as filings arrive.

    ``owner`` is a tenant id, or "" for the shared set. ``meeting_key`` is
    ``core.meetings.meeting_key`` of the body; the identifiers are kept as
    columns so a meeting named by another identifier is found and merged.
    """

    __tablename__ = "past_meetings"
    __table_args__ = (
        UniqueConstraint("owner", "meeting_key"),
        Index("ix_past_meetings_owner_meeting_date", "owner", "meeting_date"),
    )

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(40))
    meeting_key: Mapped[str] = mapped_column(String(300))
    issuer_name: Mapped[str] = mapped_column(String(4000))
    cusip: Mapped[str] = mapped_column(String(40), index=True)
    isin: Mapped[str] = mapped_column(String(40), index=True)
    figi: Mapped[str] = mapped_column(String(40), index=True)
    ticker: Mapped[str] = mapped_column(String(40), index=True)
    meeting_date: Mapped[dt.date] = mapped_column(Date)
    item_count: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    # The Meeting message, serialized deterministically.
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class BacktestRun(Base):
    """A stored backtest: its inputs and figures as canonical JSON. Never updated."""

    __tablename__ = "backtest_runs"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    backtest_id: Mapped[str] = mapped_column(String(40), unique=True)
    owner: Mapped[str] = mapped_column(String(40), index=True)
    meetings: Mapped[int] = mapped_column(Integer)
    items: Mapped[int] = mapped_column(Integer)
    inputs: Mapped[str] = mapped_column(Text)
    figures: Mapped[str] = mapped_column(Text)
    figures_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class ProgrammeVersion(Base):
    """A voting-choice programme: the policies on offer and the default. A change of either
    is a new version; versions are never updated."""

    __tablename__ = "programmes"
    __table_args__ = (UniqueConstraint("owner", "name", "version"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(40), index=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    # The policy references on offer, as a JSON list, in the order given.
    policies: Mapped[str] = mapped_column(Text)
    default_policy: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class ProgrammeAccount(Base):
    """An account of a programme (by the programme's name: accounts outlive its versions)."""

    __tablename__ = "programme_accounts"
    __table_args__ = (UniqueConstraint("owner", "programme", "account_id"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(40))
    programme: Mapped[str] = mapped_column(String(200))
    account_id: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class AccountChoiceVersion(Base):
    """One version of an account's choice, in force from ``effective_date``; never updated.
    ``policy`` "" means no choice (the programme's default applies)."""

    __tablename__ = "account_choices"
    __table_args__ = (UniqueConstraint("account_pk", "effective_date"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_pk: Mapped[int] = mapped_column(ForeignKey("programme_accounts.pk"))
    effective_date: Mapped[dt.date] = mapped_column(Date)
    policy: Mapped[str] = mapped_column(String(200))
    custodian_account: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class AccountHolding(Base):
    """An account's shares of a security (ISIN or CUSIP) as of a date; never updated.
    ``shares`` is the exact decimal as text (no float, no database-specific NUMERIC)."""

    __tablename__ = "account_holdings"
    __table_args__ = (UniqueConstraint("account_pk", "security", "as_of"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_pk: Mapped[int] = mapped_column(ForeignKey("programme_accounts.pk"))
    security: Mapped[str] = mapped_column(String(40), index=True)
    as_of: Mapped[dt.date] = mapped_column(Date)
    shares: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class StoredVotePlan(Base):
    """A vote plan as made: the decisions it used, the programme version, the record date,
    the per-item totals (canonical JSON) and the positions (zlib-compressed canonical JSON,
    read whole to replay or export). Never updated."""

    __tablename__ = "vote_plans"
    __table_args__ = (
        Index("ix_vote_plans_owner_programme_meeting_date", "owner", "programme", "meeting_date"),
    )

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    plan_id: Mapped[str] = mapped_column(String(40), unique=True)
    owner: Mapped[str] = mapped_column(String(40))
    programme: Mapped[str] = mapped_column(String(200))
    programme_version: Mapped[int] = mapped_column(Integer)
    meeting_id: Mapped[str] = mapped_column(String(200))
    meeting_date: Mapped[dt.date] = mapped_column(Date)
    record_date: Mapped[dt.date] = mapped_column(Date)
    security: Mapped[str] = mapped_column(String(40))
    accounts: Mapped[int] = mapped_column(Integer)
    # The Meeting message, serialized deterministically.
    meeting: Mapped[bytes] = mapped_column(LargeBinary)
    # {"programme": ..., "policies": [...], "items": [...], "not_offered": [...]}: canonical JSON.
    plan: Mapped[str] = mapped_column(Text)
    plan_hash: Mapped[str] = mapped_column(String(64))
    positions: Mapped[bytes] = mapped_column(LargeBinary)
    positions_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
