"""The end-to-end tests' harness: a local site, a version store and a sources.yaml, run by cycles.

A `World` holds what tests/test_pipeline.py, test_moves.py, test_identity.py, test_faults.py,
test_alerts.py, test_recheck.py, test_source_health.py and test_process_faults.py each set up: the
`LocalSite` the sources point at, an engine and session factory on the store (`db_url`: SQLite or
PostgreSQL), the config the module describes in `config_text()`, the cycle run through
`policywatch.pipeline.run_cycle`, and readers of what the cycles recorded. A module subclasses it
for its own sources, pages and readers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from policywatch.config import Config, parse_config
from policywatch.pipeline import CycleSummary, run_cycle
from storage.db import ensure_schema, make_engine, session_factory
from storage.models import ChangeEvent, Document
from tests.support.site import LocalSite

# --- sources.yaml --------------------------------------------------------------------------------


def _scalar(value: object) -> str:
    """A YAML scalar for a number or a boolean (JSON's spelling is YAML's)."""
    return json.dumps(value)


def source_entry(
    site: LocalSite,
    source_id: str,
    name: str,
    *,
    listing: str = "/list/",
    link_pattern: str = "/content/",
    min_delay_s: float = 0,
    extra: str = "",
    **keys: object,
) -> str:
    """One item of `sources:`: a source whose listing is `listing` on `site`, following links that
    match `link_pattern`; `keys` are further keys (numbers, booleans), `extra` raw YAML lines of
    the source (indented by four spaces)."""
    lines = [
        f"  - id: {source_id}",
        f"    name: {name}",
        f'    listing_urls: ["{site.url(listing)}"]',
        f'    link_pattern: "{link_pattern}"',
        f"    min_delay_s: {min_delay_s}",
        *(f"    {key}: {_scalar(value)}" for key, value in keys.items()),
    ]
    if extra:
        lines.append(extra)
    return "\n".join(lines) + "\n"


def sources_yaml(
    *sources: str,
    settings: Mapping[str, object],
    settings_extra: str = "",
    subscribers: str | None = None,
) -> str:
    """A whole sources.yaml: the `sources` (from `source_entry`), `subscribers` (raw YAML items;
    None: no such key) and `settings` (numbers, booleans; `settings_extra`: raw YAML lines)."""
    text = "sources:\n" + "".join(sources)
    if subscribers is not None:
        text += f"subscribers:\n{subscribers}\n"
    text += "settings:\n" + "".join(f"  {key}: {_scalar(value)}\n" for key, value in settings.items())
    if settings_extra:
        text += settings_extra + "\n"
    return text


# --- listing pages ---------------------------------------------------------------------------------


def listing_page(entries: Iterable[tuple[str, str]], *, items: bool = True, tail: str = "") -> str:
    """A listing page linking each (href, text): as the `<li>` of one `<ul>` (`items`) or as bare
    links, followed by `tail` (more HTML)."""
    if items:
        links = "".join(f'<li><a href="{href}">{text}</a></li>' for href, text in entries)
        return f"<html><body><ul>{links}</ul>{tail}</body></html>"
    links = "".join(f'<a href="{href}">{text}</a>' for href, text in entries)
    return f"<html><body>{links}{tail}</body></html>"


def numbered(hrefs: Iterable[str]) -> list[tuple[str, str]]:
    """Each href with the link text 文件0, 文件1 ... (a listing that shows no titles)."""
    return [(href, f"文件{i}") for i, href in enumerate(hrefs)]


# --- the world -----------------------------------------------------------------------------------------


@dataclass
class World:
    """A site, a store on `url` and a config; `tmp`, where the config is written (`write_config`).

    Subclasses give `config_text()`. `config` is parsed from it when the world is made; a test may
    replace it (the next `cycle` runs the new one)."""

    site: LocalSite
    url: str
    tmp: Path | None = None

    engine: Engine = field(init=False, repr=False)
    sessions: sessionmaker[Session] = field(init=False, repr=False)
    config: Config = field(init=False, repr=False)

    # Create the schema when the world is made (else the first cycle does).
    schema_first: ClassVar[bool] = False
    # `cycle()` asserts that the cycle had no fetch error (its failures as the message).
    clean_cycles: ClassVar[bool] = False

    def __post_init__(self) -> None:
        self.engine = make_engine(self.url)
        if self.schema_first:
            ensure_schema(self.engine)
        self.sessions = session_factory(self.engine)
        self.config = parse_config(self.config_text())

    def config_text(self) -> str:
        """This world's sources.yaml (`sources_yaml` builds one)."""
        raise NotImplementedError

    def write_config(self) -> Path:
        """Write `config_text()` to `tmp`/sources.yaml, for the CLI and subprocesses; its path."""
        assert self.tmp is not None, "this world has no directory for its sources.yaml"
        path = self.tmp / "sources.yaml"
        path.write_text(self.config_text(), encoding="utf-8")
        return path

    def close(self) -> None:
        """Let go of the store's connections (the fixture's teardown)."""
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    # --- the site and the pipeline

    def put_listing_page(
        self, entries: Iterable[tuple[str, str]], *, path: str = "/list/", items: bool = True, tail: str = ""
    ) -> None:
        """Serve `listing_page(entries, ...)` at `path` of the site."""
        self.site.put(path, listing_page(entries, items=items, tail=tail))

    def cycle(self, *, full: bool = False) -> CycleSummary:
        """One cycle of `config` through `policywatch.pipeline.run_cycle`, as production runs it."""
        summary = run_cycle(self.config, self.engine, full=full)
        if self.clean_cycles:
            assert summary.errors == 0, summary.failures
        return summary

    # --- what the cycles recorded

    def change_events(self, kind: str | None = None) -> list[ChangeEvent]:
        """Every change event (of `kind`), oldest first."""
        with self.sessions() as s:
            query = select(ChangeEvent).order_by(ChangeEvent.id)
            if kind:
                query = query.where(ChangeEvent.kind == kind)
            return list(s.scalars(query))

    def event_pairs(self, document_id: int | None = None) -> list[tuple[str, int]]:
        """(kind, document id) of every change event (of that document), oldest first."""
        with self.sessions() as s:
            query = select(ChangeEvent.kind, ChangeEvent.document_id).order_by(ChangeEvent.id)
            if document_id is not None:
                query = query.where(ChangeEvent.document_id == document_id)
            return [(row.kind, row.document_id) for row in s.execute(query)]

    def count(self, model: type[Any], *where: ColumnElement[bool]) -> int:
        """How many rows of `model` (that meet `where`) the store holds."""
        with self.sessions() as s:
            return s.scalar(select(func.count()).select_from(model).where(*where)) or 0

    def document(self, url: str) -> Document:
        """The document recorded at `url` (exactly that URL), detached from its session."""
        with self.sessions() as s:
            doc = s.scalar(select(Document).where(Document.url == url))
            assert doc is not None, url
            s.expunge(doc)
            return doc
