"""The version store's tables, as SQLAlchemy 2 typed declarative models.

A `DocumentVersion` is a distinct normalised content of one document; refetching the same content
only moves the document's `version_seen_at` (the version row, with its text, is not rewritten on
every check: see `DocumentVersion.seen_until`). Raw HTML is kept compressed, once per distinct body (`RawPage`).

Why one module of ~550 lines: it is the schema, one table after another, each a dozen typed columns
with the comment that says what a column holds; the Alembic migrations and `Base.metadata` read it as
a whole, and splitting it by table would scatter the foreign keys that tie the tables together.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


# The string columns that hold a kind, a state or a status keep to their set in storage.vocabulary
# (CHECK constraints, or triggers on SQLite: migration 0021); the comments below name the set.

# Mapper arguments of the tables whose server-default columns are not read back after an INSERT
# (see Document). One shared mapping: SQLAlchemy only reads it.
NO_EAGER_DEFAULTS: dict[str, Any] = {"eager_defaults": False}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both SQLite (which drops the zone) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Source(Base):
    __tablename__ = "sources"
    # Columns with server defaults are not read back after an INSERT (older stores, see Document).
    __mapper_args__ = NO_EAGER_DEFAULTS

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set at the end of the first cycle that fetched anything: before it, documents are a silent baseline.
    baseline_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # How many document links the listings gave last time: a listing that suddenly gives none is broken.
    last_listing_links: Mapped[int | None] = mapped_column(Integer)
    # New URLs found but left for a later cycle (over the host budget or max_documents), in order:
    # fetched first next time even if the listing has moved on (policywatch.pipeline.plan_source).
    pending_urls: Mapped[list[str] | None] = mapped_column(JSON)
    # The document URLs the listings showed last cycle (a document just dropped off them while new
    # URLs appeared may have moved: it is checked before them).
    listed_urls: Mapped[list[str] | None] = mapped_column(JSON)
    # The last cycle's re-check report (policywatch.pipeline.CycleSummary.freshness), for the dashboard.
    freshness: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Whether the source has quietly stopped working (policywatch.health): up | degraded | down,
    # the failing cycles in a row, why, since when, and the cycle that last updated it.
    health_state: Mapped[str] = mapped_column(String(16), server_default="up")  # vocabulary.HealthState
    consecutive_failures: Mapped[int] = mapped_column(Integer, server_default="0")
    # NULL as a server default: an INSERT that leaves them unset names no such column (older stores).
    health_reason: Mapped[str | None] = mapped_column(Text, server_default=text("NULL"))
    health_since: Mapped[datetime | None] = mapped_column(UTCDateTime, server_default=text("NULL"))
    health_cycle: Mapped[str | None] = mapped_column(String(64), server_default=text("NULL"))


class Document(Base):
    __tablename__ = "documents"
    # The check counters have server defaults: not read back after an INSERT (see below).
    __mapper_args__ = NO_EAGER_DEFAULTS

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source_id: Mapped[str] = mapped_column(ForeignKey("sources.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="active")  # vocabulary.DocumentStatus
    title: Mapped[str | None] = mapped_column(Text)
    doc_number: Mapped[str | None] = mapped_column(String(200), index=True)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    # No foreign key: documents and versions would reference each other and need a deferred constraint.
    current_version_id: Mapped[int | None] = mapped_column(BigId)
    # Set when the first text of this document was already known at another URL (a repost).
    republished_of_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"))
    # A file (附件) linked from the body of this page: the page's id. NULL for pages. No foreign
    # key: SQLite cannot add one to an existing table (0012).
    attachment_of: Mapped[int | None] = mapped_column(BigId, index=True, server_default=text("NULL"))
    # extraction.equivalence.page_fingerprint of the last page read to the current version: a
    # refetch with the same one is that version seen again, without extracting it.
    page_fingerprint: Mapped[str | None] = mapped_column(String(64))
    # When the current version was last seen. Written by every check instead of the version's own
    # last_seen_at: rewriting a row that holds a 60 KB text costs SQLite ~1 ms (the whole record and
    # its overflow pages), on every unchanged page of every cycle. The version row catches up when
    # it is superseded.
    version_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The check history policywatch.schedule decides the next check from: successful checks (the
    # first fetch included), those that found the text or title changed, those answered 304, and
    # the re-checks since its removal that found it still gone. A fetch error is not a check.
    # Server defaults only: an INSERT that leaves them unset names no such column, so code that
    # writes documents works on a store not yet upgraded to 0009 (as for extractor_revision).
    checks: Mapped[int] = mapped_column(Integer, server_default="1")
    changes: Mapped[int] = mapped_column(Integer, server_default="0")
    not_modified_checks: Mapped[int] = mapped_column(Integer, server_default="0")
    removed_checks: Mapped[int] = mapped_column(Integer, server_default="0")

    versions: Mapped[list[DocumentVersion]] = relationship(
        back_populates="document",
        foreign_keys="DocumentVersion.document_id",
        order_by="DocumentVersion.id",
    )


class DocumentUrl(Base):
    """Every URL a document has been seen at: a moved document keeps its id and history."""

    __tablename__ = "document_urls"

    url: Mapped[str] = mapped_column(String(2000), primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), index=True)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RawPage(Base):
    __tablename__ = "raw_pages"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    compression: Mapped[str] = mapped_column(String(16), default="zlib")
    body: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    encoding: Mapped[str | None] = mapped_column(String(40))


class DocumentVersion(Base):
    __tablename__ = "document_versions"
    __table_args__ = (Index("ix_document_versions_document_hash", "document_id", "content_hash"),)
    # An INSERT that leaves extractor_revision unset names no such column and reads nothing back, so
    # code that writes versions works on a store not yet upgraded to 0008 (the row gets the default).
    __mapper_args__ = NO_EAGER_DEFAULTS

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), index=True)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)  # display text: paragraphs joined by "\n", original punctuation
    normalized_text: Mapped[str] = mapped_column(Text)  # NFKC, whitespace-folded paragraphs joined by "\n"
    doc_number: Mapped[str | None] = mapped_column(String(200))
    issuer: Mapped[str | None] = mapped_column(String(300))
    published_at: Mapped[str | None] = mapped_column(String(10))
    chars: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(String(2000))
    extraction_method: Mapped[str | None] = mapped_column(String(16))
    raw_sha256: Mapped[str | None] = mapped_column(ForeignKey("raw_pages.sha256"))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # extraction.EXTRACTOR_REVISION of the extractor that read this text. The cycle always sets it;
    # the server default "1" is what every version stored before the column existed holds, and what
    # a row written by code that does not know the column (an older worker) gets. `policywatch
    # reextract` brings older versions up to date from their raw pages (policywatch.reextract).
    extractor_revision: Mapped[str | None] = mapped_column(String(16), server_default="1")

    document: Mapped[Document] = relationship(back_populates="versions", foreign_keys=[document_id])

    @property
    def paragraphs(self) -> list[str]:
        return self.text.split("\n") if self.text else []

    @property
    def seen_until(self) -> datetime:
        """When this version was last seen (its last_seen_at, or the document's for the current one)."""
        return seen_until(self.id, self.last_seen_at, self.document)

    @property
    def normalized_paragraphs(self) -> list[str]:
        return self.normalized_text.split("\n") if self.normalized_text else []


class VersionReextraction(Base):
    """What a version held before `policywatch reextract` rewrote it (policywatch.reextract).

    One row per version and rewrite that changed something; the texts are zlib-compressed UTF-8
    (paragraphs joined by "\n", as in document_versions). A re-extraction that changed nothing only
    moves the version's extractor_revision and leaves no row here.
    """

    __tablename__ = "version_reextractions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("document_versions.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    from_revision: Mapped[str | None] = mapped_column(String(16))
    to_revision: Mapped[str] = mapped_column(String(16))
    old_content_hash: Mapped[str] = mapped_column(String(64))
    new_content_hash: Mapped[str] = mapped_column(String(64))
    old_title: Mapped[str] = mapped_column(Text)
    old_text: Mapped[bytes] = mapped_column(LargeBinary)  # zlib: the display text
    old_normalized_text: Mapped[bytes] = mapped_column(LargeBinary)  # zlib: the comparison text
    old_doc_number: Mapped[str | None] = mapped_column(String(200))
    old_issuer: Mapped[str | None] = mapped_column(String(300))
    old_published_at: Mapped[str | None] = mapped_column(String(10))
    old_extraction_method: Mapped[str | None] = mapped_column(String(16))


class FetchAttempt(Base):
    __tablename__ = "fetch_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source_id: Mapped[str] = mapped_column(ForeignKey("sources.id"), index=True)
    document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    status: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))  # vocabulary.AttemptOutcome
    error_kind: Mapped[str | None] = mapped_column(String(24))
    error: Mapped[str | None] = mapped_column(Text)
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    bytes: Mapped[int | None] = mapped_column(Integer)
    elapsed_ms: Mapped[int | None] = mapped_column(Integer)
    redirects: Mapped[list[str] | None] = mapped_column(JSON)


class ChangeEvent(Base):
    __tablename__ = "change_events"
    __table_args__ = (Index("ix_change_events_source_detected", "source_id", "detected_at"),)
    __mapper_args__ = NO_EAGER_DEFAULTS  # see Document

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)  # vocabulary.EventKind
    source_id: Mapped[str] = mapped_column(ForeignKey("sources.id"))
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    title: Mapped[str | None] = mapped_column(Text)
    old_version_id: Mapped[int | None] = mapped_column(ForeignKey("document_versions.id"))
    new_version_id: Mapped[int | None] = mapped_column(ForeignKey("document_versions.id"))
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    relevant: Mapped[bool] = mapped_column(Boolean, default=False)
    relevance_terms: Mapped[list[str] | None] = mapped_column(JSON)
    significance: Mapped[float] = mapped_column(Float, default=1.0)
    summary: Mapped[str] = mapped_column(Text, default="")
    # The document this one reposts (for `republished`).
    original_document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"))
    # The event's document is a file attached to this page (Document.attachment_of).
    attachment_of: Mapped[int | None] = mapped_column(BigId, server_default=text("NULL"))
    # The analysts' current mark (the newest ChangeMark's, NULL when none or cleared):
    # vocabulary.CURRENT_MARKS. Kept here so lists filter without a subquery.
    mark: Mapped[str | None] = mapped_column(String(24), index=True, server_default=text("NULL"))


class ChangeMark(Base):
    """One triage mark an analyst put on a change (or took off it: `cleared`), with who and when.

    Rows are never updated or deleted: together they are the audit trail; the newest row of an
    event is its current mark, copied to `ChangeEvent.mark` in the same transaction.
    """

    __tablename__ = "change_marks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("change_events.id"), index=True)
    mark: Mapped[str] = mapped_column(String(24))  # vocabulary.Mark
    note: Mapped[str] = mapped_column(Text, default="")
    user: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class DocumentReference(Base):
    """A reference from one version's text to another policy document (policywatch.references):
    a title in 《…》 and/or a 发文字号, with the relation its verbs give it.

    `target_document_id` is the known document it resolves to (NULL while none is known: unresolved
    references are kept, and resolved when such a document appears). `checked_through`: the highest
    document id an unresolved reference was tried against, so each is tried against a new document once.
    """

    __tablename__ = "document_references"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("document_versions.id"), index=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # vocabulary.ReferenceKind
    title: Mapped[str | None] = mapped_column(Text)  # as printed inside 《》
    doc_number: Mapped[str | None] = mapped_column(String(200), index=True)  # canonical 国发〔2021〕29号
    context: Mapped[str] = mapped_column(Text, default="")  # the sentence it was found in
    target_document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"), index=True)
    resolved_by: Mapped[str | None] = mapped_column(String(16))  # vocabulary.ResolvedBy
    checked_through: Mapped[int] = mapped_column(BigId, default=0, server_default="0")


class OperatorNotice(Base):
    """A source's health changed (degraded, recovered): one mail to the operators, sent once.

    Written in the transaction that changes the state (policywatch.health), like the alert outbox;
    status pending → sent.
    """

    __tablename__ = "operator_notices"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source_id: Mapped[str] = mapped_column(ForeignKey("sources.id"))
    kind: Mapped[str] = mapped_column(String(16))  # vocabulary.NoticeKind
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)  # vocabulary.NoticeStatus
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    message_id: Mapped[str | None] = mapped_column(String(250))


class RunLock(Base):
    """One row per source while a cycle runs on it: two cycles never process one source at once."""

    __tablename__ = "run_locks"

    source_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HostTurn(Base):
    """When the next request to a host may start, for every worker of a PostgreSQL deployment
    (storage.host_turns): the row is locked for the length of one request."""

    __tablename__ = "host_turns"

    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    # Seconds since the epoch on the database server's clock (the workers' clocks may disagree).
    next_at: Mapped[float] = mapped_column(Float, default=0.0)


# --- alerts (issue 4): subscribers synced from the config, and the outbox of what to mail ----------


class Subscriber(Base):
    """One e-mail address. Kept when it leaves the config, so what it was sent is never forgotten."""

    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # Lower-cased address: the identity that survives config edits (reordering, changed filters).
    email: Mapped[str] = mapped_column(String(320), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)  # False: no longer in the config
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_digest_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    subscriptions: Mapped[list[Subscription]] = relationship(
        back_populates="subscriber", order_by="Subscription.position", cascade="all, delete-orphan"
    )


class Subscription(Base):
    """One `subscribers:` entry of the config (an address may have several), replaced on each sync."""

    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # index of the entry in the config
    sources: Mapped[list[str]] = mapped_column(JSON)  # source ids, or ["*"]
    keywords: Mapped[list[str]] = mapped_column(JSON)
    events: Mapped[list[str]] = mapped_column(JSON)
    digest: Mapped[bool] = mapped_column(Boolean, default=False)
    # 发文字号 or titles: only changes to documents that cite, implement, amend or repeal one of them.
    follows: Mapped[list[str] | None] = mapped_column(JSON)

    subscriber: Mapped[Subscriber] = relationship(back_populates="subscriptions")


class OutboxMessage(Base):
    """One alert to send: a (subscriber, event) pair, queued in the transaction that made the event.

    status: pending → sending (claimed, with a lease) → sent; a failed send goes back to pending
    with the error. `message_id` is fixed the first time the row is claimed, so a resend after a
    crash between the SMTP server's acceptance and our commit carries the same Message-ID.
    """

    __tablename__ = "alert_outbox"
    __table_args__ = (
        # Exactly once: one row per (subscriber, event, reason), whatever retries and reruns do.
        Index("uq_alert_outbox_subscriber_event_reason", "subscriber_id", "event_id", "reason", unique=True),
        Index("ix_alert_outbox_status_mode", "status", "mode"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id"))
    event_id: Mapped[int] = mapped_column(ForeignKey("change_events.id"), index=True)
    mode: Mapped[str] = mapped_column(String(16))  # vocabulary.SubscriptionMode
    # event: the change itself; important: an analyst marked it important (a second, later mail).
    reason: Mapped[str] = mapped_column(
        String(16), default="event", server_default="event"
    )  # vocabulary.OutboxReason
    # pending | sending | sent | failed | cancelled
    status: Mapped[str] = mapped_column(String(16), default="pending")  # vocabulary.OutboxStatus
    message_id: Mapped[str | None] = mapped_column(String(250))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # every try, outages included
    rejections: Mapped[int] = mapped_column(Integer, default=0)  # 5xx refusals of this very message
    # After a refusal: not tried again before this time (alerts.outbox.REFUSAL_BACKOFF); NULL: now.
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# --- subscriber self-service (issue 17): opt-outs and preferences, the store's identity, sent mail ---


class SubscriberPreference(Base):
    """What a subscriber chose through the web app (one row per subscriber, made on first change).

    It takes precedence over the config for that address: an opt-out survives every config sync
    and restart, and `custom` filters replace the config's entries for the address. The config
    stays the way an operator adds people; it never undoes what a subscriber chose here.
    """

    __tablename__ = "subscriber_preferences"

    subscriber_id: Mapped[int] = mapped_column(BigId, ForeignKey("subscribers.id"), primary_key=True)
    # Set by the one-click POST (RFC 8058) or the preferences page: no mail of any kind after it.
    opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    opted_out_via: Mapped[str | None] = mapped_column(String(32))  # one-click | page
    # True: the four filters below are the subscriber's only rule (the config's entries are ignored).
    custom: Mapped[bool] = mapped_column(Boolean, default=False)
    sources: Mapped[list[str] | None] = mapped_column(JSON)
    keywords: Mapped[list[str] | None] = mapped_column(JSON)
    events: Mapped[list[str] | None] = mapped_column(JSON)
    digest: Mapped[bool | None] = mapped_column(Boolean)
    follows: Mapped[list[str] | None] = mapped_column(JSON)
    # The digest goes out once per local day, at this hour of this IANA zone.
    digest_hour: Mapped[int] = mapped_column(Integer, default=8, server_default="8")
    digest_timezone: Mapped[str] = mapped_column(
        String(64), default="Asia/Shanghai", server_default="Asia/Shanghai"
    )
    # Part of the signed token: raised on re-subscribing, so links in older mails stop working.
    token_generation: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StoreIdentity(Base):
    """One row (id 1): who this version store is. `store_id` goes into every Message-ID, so two
    installations never produce the same one; `secret` signs the unsubscribe tokens unless
    POLICYWATCH_SECRET_KEY is set. Made once by migration 0010 (or on first use)."""

    __tablename__ = "store_identity"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    store_id: Mapped[str] = mapped_column(String(64))
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SentMail(Base):
    """Every mail the SMTP server accepted from PolicyWatch (alert, digest, operator notice), as sent:
    the web app's Mail page shows them. Written in the transaction that marks the outbox rows sent."""

    __tablename__ = "sent_mail"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # vocabulary.SentKind
    message_id: Mapped[str] = mapped_column(String(250))
    recipient: Mapped[str] = mapped_column(String(320))
    subscriber_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("subscribers.id"))
    subject: Mapped[str] = mapped_column(Text)
    event_ids: Mapped[list[int] | None] = mapped_column(JSON)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    text: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    headers: Mapped[dict[str, str] | None] = mapped_column(JSON)


# --- identity and reposts (issue 6): MinHash LSH bands of each version's normalised body text -------


class MinhashBand(Base):
    """One band of a version's MinHash signature (policywatch.reposts).

    Versions that share a band key are candidates for "the same text" (a repost); a candidate is
    confirmed by comparing the texts. A version is indexed once it has its rows here.
    """

    __tablename__ = "minhash_bands"

    band_key: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    version_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("document_versions.id"), primary_key=True, index=True
    )
    document_id: Mapped[int] = mapped_column(BigId, ForeignKey("documents.id"))


def seen_until(version_id: int, last_seen_at: datetime, document: Document | None) -> datetime:
    """A version's last sighting: the document's `version_seen_at` when it is the current version."""
    if document is not None and document.current_version_id == version_id and document.version_seen_at:
        return max(last_seen_at, document.version_seen_at)
    return last_seen_at
