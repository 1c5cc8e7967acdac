"""Alert e-mails: an event's view from the store, rendered with Jinja2 into a multipart message.

Page text is untrusted. Every value is stripped of control characters when the view is built (so
plain text cannot carry terminal escapes or stray CR/LF), HTML templates autoescape, the diff comes
from policywatch.policydiff.render_html (which escapes and inlines its styles), links are only http(s), and
header values additionally lose line breaks and are length-capped: a title cannot inject a header.

(About 460 lines in one module: these sanitising rules hold only if every part of a message, alert,
digest or notice, is built in one place that applies them; the templates are alerts/templates.)
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from sqlalchemy.orm import Session

from policywatch.policydiff import DocumentDiff, render_html, render_text
from storage.models import ChangeEvent, Document, DocumentVersion, Source
from storage.vocabulary import EventKind

if TYPE_CHECKING:
    from alerts.digest import SourceGroup
    from storage.models import SentMail

TEMPLATES = Path(__file__).resolve().parent / "templates"
BEIJING = timezone(timedelta(hours=8), "北京时间")

# A rewrite of a whole document would make a mail of hundreds of KB: show the first changes only.
MAX_CHANGES_SHOWN = 40
EXCERPT_CHARS = 600
SUBJECT_TITLE_CHARS = 120

KIND_LABELS = {kind.value: (kind.label_zh, kind.label) for kind in EventKind}
KIND_COLOURS = {kind.value: kind.colour for kind in EventKind}

_env = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


# --- untrusted text ------------------------------------------------------------------------------


def clean_text(value: str | None) -> str:
    """Text for a body: control and format characters removed (newlines and tabs kept)."""
    if not value:
        return ""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(
        ch
        for ch in value
        if ch in "\n\t" or not (unicodedata.category(ch).startswith("C") or ch in "\u2028\u2029")
    )


def header_text(value: str | None, limit: int = 200) -> str:
    """Text for a header value: one line, no control characters, at most `limit` characters."""
    if not value:
        return ""
    chars = (" " if (unicodedata.category(ch).startswith(("C", "Z")) or ch.isspace()) else ch for ch in value)
    text = " ".join("".join(chars).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def safe_href(url: str | None) -> str | None:
    """Only http(s) URLs become links (no javascript:, data:, mailto: from a page)."""
    if not url:
        return None
    url = header_text(url, limit=2000).replace(" ", "%20")
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else None


# --- the view of one event -------------------------------------------------------------------------


@dataclass(frozen=True)
class EventView:
    """What an alert shows about one change event, all text already cleaned."""

    event_id: int
    kind: str
    source_id: str
    source_name: str
    document_id: int
    title: str
    url: str
    href: str | None
    issuer: str
    doc_number: str
    published_at: str
    detected_at: datetime
    summary: str
    significance: float
    relevant: bool
    relevance_terms: tuple[str, ...]
    old_version_id: int | None
    new_version_id: int | None
    diff_html: Markup | None = None
    diff_text: str | None = None
    changes_shown: int = 0
    changes_total: int = 0
    excerpt: tuple[str, ...] = ()
    original_url: str | None = None
    original_href: str | None = None
    # Reposts of one policy share this key (the digest collapses them into one entry).
    policy_key: str = ""
    # Links into the web app (POLICYWATCH_PUBLIC_URL): the change's diff, the document's history.
    diff_href: str | None = None
    history_href: str | None = None
    # A new or removed document has no diff: its text (the version) instead.
    version_href: str | None = None
    # "important": the alert says an analyst marked the change so (alerts.marks), by whom and why.
    reason: str = "event"
    marked_by: str = ""
    marked_note: str = ""

    @property
    def kind_zh(self) -> str:
        return KIND_LABELS.get(self.kind, (self.kind, self.kind))[0]

    @property
    def kind_en(self) -> str:
        return KIND_LABELS.get(self.kind, (self.kind, self.kind))[1]

    @property
    def colour(self) -> str:
        return KIND_COLOURS.get(self.kind, "#57606a")

    @property
    def detected_local(self) -> str:
        from alerts.identity import local_time

        return local_time(self.detected_at)

    @property
    def diff_command(self) -> str | None:
        if self.old_version_id and self.new_version_id and self.old_version_id != self.new_version_id:
            return f"policywatch diff {self.old_version_id} {self.new_version_id}"
        return None


def _excerpt(version: DocumentVersion | None, limit: int = EXCERPT_CHARS) -> tuple[str, ...]:
    if version is None:
        return ()
    out: list[str] = []
    used = 0
    for paragraph in version.paragraphs:
        paragraph = clean_text(paragraph).strip()
        if not paragraph:
            continue
        if used + len(paragraph) > limit:
            out.append(paragraph[: max(0, limit - used)] + "…")
            break
        out.append(paragraph)
        used += len(paragraph)
    return tuple(out)


def _shown(diff: DocumentDiff, limit: int = MAX_CHANGES_SHOWN) -> tuple[DocumentDiff, int]:
    """The diff cut after `limit` change blocks, and how many change blocks it has in all."""
    total = len(diff.changes)
    if total <= limit:
        return diff, total
    blocks, seen = [], 0
    for block in diff.blocks:
        if block.op != "equal":
            if seen == limit:
                break
            seen += 1
        blocks.append(block)
    return DocumentDiff(tuple(blocks), diff.significance), total


def policy_key(session: Session, document: Document | None, fallback_id: int) -> str:
    """Reposts of one policy share a key: the root document's 发文字号, else the root's id."""
    from policywatch.extraction import canonical_doc_number

    root = document
    seen: set[int] = set()
    while root is not None and root.republished_of_id and root.republished_of_id not in seen:
        seen.add(root.id)
        root = session.get(Document, root.republished_of_id)
    if root is None:
        return f"doc:{fallback_id}"
    number = root.doc_number or (document.doc_number if document else None)
    return f"no:{canonical_doc_number(number)}" if number else f"doc:{root.id}"


def web_links(public_url: str | None, event: ChangeEvent) -> dict[str, str | None]:
    """The event's pages in the web app (diff, or the version's text; the document's history);
    none without POLICYWATCH_PUBLIC_URL."""
    links: dict[str, str | None] = {"diff_href": None, "version_href": None, "history_href": None}
    if not public_url:
        return links
    old, new = event.old_version_id, event.new_version_id
    if old and new and old != new:
        links["diff_href"] = safe_href(f"{public_url}/diff/{int(old)}/{int(new)}")
    elif new or old:
        links["version_href"] = safe_href(f"{public_url}/versions/{int(new or old)}")  # type: ignore[arg-type]
    links["history_href"] = safe_href(f"{public_url}/documents/{int(event.document_id)}")
    return links


def build_event_view(
    session: Session, event: ChangeEvent, public_url: str | None = None, reason: str = "event"
) -> EventView:
    from alerts.marks import important_mark
    from policywatch.classify import diff_versions

    old = session.get(DocumentVersion, event.old_version_id) if event.old_version_id else None
    new = session.get(DocumentVersion, event.new_version_id) if event.new_version_id else None
    document = session.get(Document, event.document_id)
    source = session.get(Source, event.source_id)
    version = new or old
    diff_html = diff_text = None
    shown = total = 0
    if event.kind in ("changed", "restored") and old is not None and new is not None and old.id != new.id:
        diff, total = _shown(diff_versions(old, new))
        shown = len(diff.changes)
        diff_html = Markup(render_html(diff, context=1))  # policydiff escapes all page text
        diff_text = clean_text(render_text(diff, context=1))
    excerpt: tuple[str, ...] = ()
    if event.kind in ("new", "republished"):
        excerpt = _excerpt(new)
    elif event.kind == "removed":
        excerpt = _excerpt(old, limit=EXCERPT_CHARS // 2)
    original_url = None
    if event.original_document_id:
        original = session.get(Document, event.original_document_id)
        original_url = original.url if original else None
    url = clean_text(event.url)
    marked = important_mark(session, event.id) if reason == "important" else None
    return EventView(
        event_id=event.id,
        kind=event.kind,
        source_id=header_text(event.source_id, 64),
        source_name=clean_text(source.name if source else event.source_id),
        document_id=event.document_id,
        title=header_text(event.title or (version.title if version else "") or event.url, 500),
        url=url,
        href=safe_href(url),
        issuer=header_text(version.issuer if version else "", 200),
        doc_number=header_text(
            (version.doc_number if version else None) or (document.doc_number if document else ""), 200
        ),
        published_at=header_text(version.published_at if version else "", 20),
        detected_at=event.detected_at.astimezone(UTC),
        summary=clean_text(event.summary),
        significance=float(event.significance),
        relevant=bool(event.relevant),
        relevance_terms=tuple(header_text(t, 40) for t in (event.relevance_terms or [])[:8]),
        old_version_id=event.old_version_id,
        new_version_id=event.new_version_id,
        diff_html=diff_html,
        diff_text=diff_text,
        changes_shown=shown,
        changes_total=total,
        excerpt=excerpt,
        original_url=clean_text(original_url) if original_url else None,
        original_href=safe_href(original_url),
        policy_key=policy_key(session, document, event.document_id),
        **web_links(public_url, event),
        reason=reason if marked is not None else "event",
        marked_by=header_text(marked.user, 200) if marked else "",
        marked_note=clean_text(marked.note) if marked else "",
    )


@dataclass(frozen=True)
class SubscriberLinks:
    """The recipient's own links (signed token): one-click unsubscribe and the preferences page."""

    unsubscribe: str
    preferences: str

    @classmethod
    def of(cls, public_url: str | None, token: str) -> SubscriberLinks | None:
        if not public_url:
            return None
        return cls(f"{public_url}/unsubscribe/{token}", f"{public_url}/preferences/{token}")


# --- messages ------------------------------------------------------------------------------------


def _message(
    *,
    subject: str,
    text: str,
    html: str,
    mail_from: str,
    to: str,
    message_id: str,
    event_kind: str,
    change_ids: Sequence[int],
    source_ids: Sequence[str],
    now: datetime,
    links: SubscriberLinks | None = None,
    marked: bool = False,
) -> EmailMessage:
    # policy=SMTP: CRLF line ends, and non-ASCII header values are RFC 2047 encoded on output.
    msg = EmailMessage(policy=SMTP)
    msg["Subject"] = header_text(subject, 250)
    msg["From"] = header_text(mail_from, 320)
    msg["To"] = header_text(to, 320)
    msg["Date"] = format_datetime(now.astimezone(UTC))
    msg["Message-ID"] = header_text(message_id, 250)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Policywatch-Event"] = event_kind
    msg["X-Policywatch-Change-Id"] = ", ".join(str(int(i)) for i in change_ids)
    msg["X-Policywatch-Source"] = header_text(", ".join(dict.fromkeys(source_ids)), 500)
    if marked:
        msg["X-Policywatch-Mark"] = "important"  # an analyst marked the change important (alerts.marks)
    if links is not None:
        # RFC 8058 one-click: a POST of "List-Unsubscribe=One-Click" to this URL, no login.
        msg["List-Unsubscribe"] = f"<{header_text(links.unsubscribe, 1000)}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(text, charset="utf-8")
    msg.add_alternative(html, subtype="html", charset="utf-8")
    return msg


def alert_subject(view: EventView) -> str:
    marked = "重要 · " if view.reason == "important" else ""
    return f"[PolicyWatch] {marked}{view.kind_zh}: {header_text(view.title, SUBJECT_TITLE_CHARS)}"


def render_alert(
    view: EventView, recipient: str, links: SubscriberLinks | None = None
) -> tuple[str, str, str]:
    """(subject, text, html) of the immediate alert for one event."""
    context = {"v": view, "recipient": clean_text(recipient), "links": links}
    text = _env.get_template("alert.txt.j2").render(context)
    html = _env.get_template("alert.html.j2").render(context)
    return alert_subject(view), text, html


def alert_message(
    view: EventView,
    recipient: str,
    mail_from: str,
    message_id: str,
    now: datetime,
    links: SubscriberLinks | None = None,
) -> EmailMessage:
    subject, text, html = render_alert(view, recipient, links)
    return _message(
        subject=subject,
        text=text,
        html=html,
        mail_from=mail_from,
        to=recipient,
        message_id=message_id,
        event_kind=view.kind,
        change_ids=[view.event_id],
        source_ids=[view.source_id],
        now=now,
        links=links,
        marked=view.reason == "important",
    )


def render_digest(
    groups: Sequence[SourceGroup], recipient: str, day: str, count: int, links: SubscriberLinks | None = None
) -> tuple[str, str, str]:
    """(subject, text, html) of a digest; `groups` come from alerts.digest.group_entries."""
    context = {
        "groups": groups,
        "recipient": clean_text(recipient),
        "day": day,
        "count": count,
        "links": links,
    }
    first = next((e.title for g in groups for e in g.entries), "")
    subject = f"[PolicyWatch] 每日摘要 {day}: {count} 项变化"
    if first:
        subject += f" · {header_text(first, 60)}"
    text = _env.get_template("digest.txt.j2").render(context)
    html = _env.get_template("digest.html.j2").render(context)
    return subject, text, html


def digest_message(
    groups: Sequence[SourceGroup],
    views: Sequence[EventView],
    recipient: str,
    mail_from: str,
    message_id: str,
    now: datetime,
    links: SubscriberLinks | None = None,
    zone_name: str | None = None,
) -> EmailMessage:
    from alerts.identity import display_zone_name, zone

    # The subscriber's local day (the digest goes out at its local hour), else the display zone's.
    day = now.astimezone(zone(zone_name or display_zone_name())).strftime("%Y-%m-%d")
    subject, text, html = render_digest(groups, recipient, day, len(views), links)
    return _message(
        subject=subject,
        text=text,
        html=html,
        mail_from=mail_from,
        to=recipient,
        message_id=message_id,
        event_kind="digest",
        change_ids=sorted(v.event_id for v in views),
        source_ids=sorted({v.source_id for v in views}),
        now=now,
        links=links,
    )


def sent_record(
    message: EmailMessage,
    kind: str,
    recipient: str,
    now: datetime,
    subscriber_id: int | None = None,
    event_ids: Sequence[int] = (),
) -> SentMail:
    """The row the Mail page shows for a message the server accepted: both parts as sent."""
    from storage.models import SentMail

    def part(subtype: str) -> str | None:
        body = message.get_body(preferencelist=(subtype,))
        return body.get_content() if body is not None else None

    names = ("Subject", "From", "To", "Date", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post")
    headers = {n: str(message[n]) for n in names if message[n] is not None}
    headers.update({k: str(v) for k, v in message.items() if k.lower().startswith("x-policywatch-")})
    return SentMail(
        kind=kind,
        message_id=str(message["Message-ID"] or ""),
        recipient=recipient,
        subscriber_id=subscriber_id,
        subject=str(message["Subject"] or ""),
        event_ids=sorted(int(i) for i in event_ids) or None,
        sent_at=now,
        text=part("plain") or "",
        html=part("html"),
        headers=headers,
    )
