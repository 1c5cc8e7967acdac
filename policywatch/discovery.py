"""Discover: read a source's listings and plan which documents its cycle checks, in which order.

The first stage of a source's cycle, split off from the orchestration (policywatch.pipeline) because
it is a stage of its own: Airflow runs it as its own task (policywatch.tasks hands the plan's
targets, in batches, to the mapped tasks that check them), and `run_source` before the checks. It
reads every listing (`discover_listed`, `read_listing`), pairs a known document that left the
listing with the new URL that may be its new address (policywatch.identity), and hands the rest to
the re-check schedule (policywatch.planning) to order within the hosts' budgets.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session, sessionmaker

from crawlers import Fetcher, canonical_url, is_private_address
from crawlers.listings import (
    ListedLink,
    ListingError,
    fetch_listing,
    parse_feed,
    parse_hanweb_listing,
    parse_html_listing,
    parse_json_listing,
)
from policywatch.config import Config, ListingConfig, SourceConfig
from policywatch.identity import moved_candidates
from policywatch.observe import Target
from policywatch.planning import schedule_checks, url_host
from policywatch.summary import CycleSummary
from storage import store
from storage.db import unit_of_work
from storage.models import Source, utcnow

# New URLs a source remembers across cycles when its budget leaves them for later.
MAX_PENDING_URLS = 10_000


def allows_private(source: SourceConfig) -> bool:
    """Private/loopback targets are allowed only for a source configured on such an address."""
    if source.allow_private is not None:
        return source.allow_private
    return any(is_private_address(urlsplit(url).hostname or "") for url in source.configured_urls)


@dataclass
class SourcePlan:
    """What one source's cycle will check, in order: discovery's result, JSON-able for Airflow's XCom."""

    source_id: str
    silent: bool  # the source has no baseline yet: record documents without events
    # First: the possible moves (a document's target followed by a target of the new URL with the
    # same document_id, see `move_pairs`), then the new URLs; checked and committed before `due`.
    new: list[Target]
    # Then the known documents that are due, most overdue first (policywatch.schedule).
    due: list[Target]
    summary: CycleSummary  # what discovery itself did (listing errors) and what the plan left for later

    def to_json(self) -> dict[str, object]:
        return {
            "source_id": self.source_id,
            "silent": self.silent,
            "new": [asdict(t) for t in self.new],
            "due": [asdict(t) for t in self.due],
            "summary": self.summary.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SourcePlan:
        return cls(
            source_id=data["source_id"],
            silent=data["silent"],
            new=[Target(**t) for t in data.get("new", [])],
            due=[Target(**t) for t in data.get("due", [])],
            summary=CycleSummary.from_json(data["summary"]),
        )


def plan_source(
    source: SourceConfig,
    config: Config,
    factory: sessionmaker[Session],
    fetcher: Fetcher,
    *,
    full: bool = False,
    now: datetime | None = None,
) -> SourcePlan:
    """Discover: read the listings and decide which documents this cycle checks, in which order."""
    summary = CycleSummary()
    now = now or utcnow()
    with unit_of_work(factory) as session:
        src = store.ensure_source(session, source.id, source.name)
        silent = src.baseline_at is None and not config.settings.first_run_alerts
        known = store.known_documents(session, source.id)
        previous_links = src.last_listing_links
        pending = list(src.pending_urls or [])
        previously_listed = set(src.listed_urls or [])
        baseline_at = src.baseline_at

    listing_requests: Counter[str] = Counter()
    listed = discover_listed(
        source, fetcher, factory, summary, allows_private(source), previous_links, listing_requests
    )
    # The configured pages, the listings' links in their order, then what earlier cycles left.
    wanted = [canonical_url(u) for u in source.pages] + [link.url for link in listed] + pending
    known_targets: dict[int, tuple[Target, store.KnownDocument]] = {}
    for doc in known.values():
        fingerprint = doc.page_fingerprint if doc.status == "active" else None
        target = Target(doc.url, doc.id, doc.etag, doc.last_modified, fingerprint)
        known_targets.setdefault(doc.id, (target, doc))
    new_urls = [u for u in dict.fromkeys(wanted) if u not in known]
    pairs: list[tuple[Target, Target]] = []
    if new_urls and known and summary.errors == 0:
        # A known document the listing dropped, and a new URL showing its title: both are checked
        # first, as a pair (the document's own target, then the new URL with the document's id),
        # decided together whatever order they answer in: see policywatch.identity and
        # DocumentProcessor.
        with factory() as session:
            known_urls = {url: doc.id for url, doc in known.items()}
            moves = moved_candidates(session, source.id, listed, known_urls, new_urls)
        for doc_id, url in moves.items():
            pairs.append((known_targets.pop(doc_id)[0], Target(url, doc_id)))
            new_urls.remove(url)
    dropped: list[Target] = []
    listed_now = {link.url for link in listed}
    if new_urls and summary.errors == 0 and previously_listed:
        # Documents the listing showed last cycle and no longer does, while new URLs appeared: one
        # of them may have moved there. Each is checked before the new URLs (its redirect keeps its
        # history), at the cost of about one request per new document.
        for url in sorted(previously_listed - listed_now):
            gone = known.get(url)
            if gone is not None and gone.id in known_targets and gone.status == "active":
                dropped.append(known_targets.pop(gone.id)[0])
    checks = schedule_checks(
        source,
        config,
        pairs=pairs,
        first=dropped,
        new_urls=new_urls,
        known=known_targets,
        baseline_at=baseline_at,
        listing_requests=listing_requests,
        now=now,
        full=full,
    )
    listed_urls = sorted(listed_now)[:MAX_PENDING_URLS] if summary.errors == 0 else None
    if checks.new_deferred != pending or (listed_urls is not None and set(listed_urls) != previously_listed):
        with unit_of_work(factory) as session:
            row = session.get(Source, source.id)
            if row is not None:
                row.pending_urls = checks.new_deferred[:MAX_PENDING_URLS] or None
                if listed_urls is not None:
                    row.listed_urls = listed_urls or None
    summary.documents_seen = len(known_targets) + len(pairs) + len(dropped) + len(new_urls)
    summary.due, summary.deferred = checks.due_count, checks.deferred
    summary.rechecked = len(checks.due) - checks.early
    summary.early = checks.early
    summary.new_deferred = len(checks.new_deferred)
    summary.freshness[source.id] = {
        "documents": checks.documents,
        "due": checks.due_count,
        "rechecked": len(checks.due) - checks.early,
        "early": checks.early,
        "deferred": checks.deferred,
        "not_due": checks.not_due,
        "new_deferred": len(checks.new_deferred),
        "fresh_share": round(checks.fresh / checks.documents, 4) if checks.documents else 1.0,
        "oldest_overdue_s": round(checks.oldest_overdue_s, 1),
        "budget": checks.budgets,
        "budget_used": checks.used,
        "full": full,
    }
    return SourcePlan(source.id, silent, checks.new, checks.due, summary)


def discover_listed(
    source: SourceConfig,
    fetcher: Fetcher,
    factory: sessionmaker[Session],
    summary: CycleSummary,
    allow_private: bool,
    previous_links: int | None,
    requests: Counter[str] | None = None,
) -> list[ListedLink]:
    """Read every listing (HTML, JSON, RSS/Atom; each page of a paginated one) into listed documents.

    `requests` counts the listing pages fetched per host (they come out of the host's budget)."""
    listings = source.all_listings
    if not listings:
        return []
    links: list[ListedLink] = []
    listing_failed = False
    last_result = None
    for listing in listings:
        seen_here: set[str] = set()
        for number, page_url in enumerate(listing.page_urls(), start=1):
            started = time.perf_counter()
            result = fetch_listing(
                fetcher,
                page_url,
                kind=listing.kind,
                min_delay_s=source.min_delay_s,
                allow_private=allow_private,
                encoding=source.encoding,
            )
            summary.time("fetch", time.perf_counter() - started)
            if requests is not None:
                requests[url_host(page_url)] += max(1, result.attempts)  # retries are requests too
            last_result = result
            beyond_the_end = number > 1 and result.gone
            with unit_of_work(factory) as session:
                outcome = "listing" if result.ok or beyond_the_end else "error"
                store.record_attempt(session, source.id, None, result, outcome)
            if beyond_the_end:
                break  # a page after the last one answers 404: the list is shorter than the page limit
            if not result.ok:
                listing_failed = True
                reason = result.error or (f"HTTP {result.status}" if result.status else "no answer")
                summary.fail(source.id, page_url, f"listing: {reason}")
                break
            assert result.text is not None
            try:
                found = read_listing(listing, result.text, result.final_url)
            except ListingError as exc:
                listing_failed = True
                summary.fail(source.id, page_url, f"listing: {exc}")
                break
            fresh = [link for link in found if link.url not in seen_here]
            seen_here.update(link.url for link in fresh)
            links.extend(fresh)
            if not fresh:
                break  # an empty page, or a site that serves its first page for any page number
    links = list({link.url: link for link in reversed(links)}.values())[::-1]  # first occurrence wins
    if not listing_failed:
        if not links and previous_links:
            # A listing that suddenly lists nothing is broken (a redesign, an error page): a source
            # error, never a reason to think its documents are gone.
            reason = "listing: no document links found (it had some before)"
            summary.fail(source.id, listings[0].url, reason)
            if last_result is not None:
                with unit_of_work(factory) as session:
                    store.record_attempt(
                        session, source.id, None, last_result, "error", error=reason, error_kind="listing"
                    )
        else:
            with unit_of_work(factory) as session:
                src = session.get(Source, source.id)
                if src is not None:
                    src.last_listing_links = len(links)
    return links


def read_listing(listing: ListingConfig, text: str, base_url: str) -> list[ListedLink]:
    """The documents one fetched listing page shows."""
    if listing.kind == "json":
        return parse_json_listing(
            text,
            base_url,
            items=listing.items,
            url_field=listing.url_field,
            title_field=listing.title_field,
            date_field=listing.date_field,
            html_field=listing.html_field,
            pattern=listing.link_pattern,
        )
    if listing.kind == "rss":
        return parse_feed(text, base_url, listing.link_pattern)
    if listing.kind == "hanweb":
        return parse_hanweb_listing(text, base_url, listing.link_pattern)
    assert listing.link_pattern is not None  # checked when the configuration was loaded
    return parse_html_listing(text, base_url, listing.link_pattern)
