"""`policywatch` command line (CONTRACT.md, "Command line").

Exit status: 0 done, 2 bad usage or configuration, 1 could not run (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from policywatch.config import ConfigError, load_config

EVENT_KINDS = ("new", "changed", "removed", "restored", "republished")


class UsageError(Exception):
    """Bad arguments found after parsing (exit 2)."""


class RunError(Exception):
    """The command could not do its job (exit 1)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="policywatch", description="Watch Chinese digital-economy policy pages."
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="configuration file (default: $POLICYWATCH_CONFIG, else config/sources.yaml)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="one full cycle: discover, fetch, version, diff, classify, alert")
    run.add_argument("--source", action="append", metavar="ID", help="only this source (repeatable)")
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.set_defaults(func=cmd_run)

    changes = sub.add_parser("changes", help="change events, newest first")
    changes.add_argument("--since", metavar="ISO-8601", type=parse_since)
    changes.add_argument("--source", metavar="ID")
    changes.add_argument("--kind", choices=EVENT_KINDS)
    changes.add_argument("--limit", type=int, default=100)
    changes.add_argument("--json", action="store_true")
    changes.set_defaults(func=cmd_changes)

    history = sub.add_parser("history", help="one document's versions")
    history.add_argument("ref", metavar="URL-or-DOCUMENT-ID")
    history.add_argument("--json", action="store_true")
    history.set_defaults(func=cmd_history)

    diff = sub.add_parser("diff", help="the difference between two versions")
    diff.add_argument("old", type=int, metavar="OLD-VERSION-ID")
    diff.add_argument("new", type=int, metavar="NEW-VERSION-ID")
    diff.add_argument("--format", choices=("text", "html", "json"), default="text")
    diff.set_defaults(func=cmd_diff)

    show = sub.add_parser("show", help="a version's normalised text")
    show.add_argument("version", type=int, metavar="VERSION-ID")
    show.add_argument("--original", action="store_true", help="the display text (original punctuation)")
    show.set_defaults(func=cmd_show)

    search = sub.add_parser("search", help="documents whose text contains QUERY")
    search.add_argument("query", metavar="QUERY")
    search.add_argument("--limit", type=int, default=50)
    search.add_argument("--json", action="store_true")
    search.set_defaults(func=cmd_search)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="DB-COMMAND")
    upgrade = db_sub.add_parser("upgrade", help="apply the schema migrations")
    upgrade.set_defaults(func=cmd_db_upgrade)
    return parser


def parse_since(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 date or time: {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ConfigError as exc:
        print(f"policywatch: configuration error: {exc}", file=sys.stderr)
        return 2
    except UsageError as exc:
        print(f"policywatch: {exc}", file=sys.stderr)
        return 2
    except RunError as exc:
        print(f"policywatch: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("policywatch: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        from sqlalchemy.exc import DBAPIError, SQLAlchemyError

        if isinstance(exc, SQLAlchemyError):
            detail = str(exc.orig) if isinstance(exc, DBAPIError) and exc.orig else str(exc)
            line = " ".join(detail.split())[:300]
            print(f"policywatch: database error: {line}", file=sys.stderr)
            return 1
        print(f"policywatch: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}", file=sys.stderr)
        if args.verbose:
            raise
        return 1


def _engine() -> Any:
    from storage.db import make_engine

    return make_engine()


def _read_session() -> Any:
    from storage.db import ensure_schema, session_factory

    engine = _engine()
    ensure_schema(engine)
    return session_factory(engine)()


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def cmd_run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    for source_id in args.source or []:
        config.source(source_id)  # unknown id -> ConfigError -> exit 2
    from policywatch.pipeline import run_cycle

    summary = run_cycle(config, _engine(), source_ids=args.source)
    if args.json:
        _print_json(summary.to_json())
        return 0
    print(
        f"{summary.sources} source(s), {summary.documents_seen} document(s): {summary.fetched} fetched, "
        f"{summary.not_modified} not modified, {summary.unchanged} unchanged, {summary.new} new, "
        f"{summary.changed} changed, {summary.removed} removed, {summary.restored} restored, "
        f"{summary.republished} republished, {summary.baseline} baseline, {summary.errors} error(s)"
    )
    for failure in summary.failures[:20]:
        print(f"  error [{failure['source']}] {failure['url']}: {failure['error']}")
    if len(summary.failures) > 20:
        print(f"  … and {len(summary.failures) - 20} more")
    return 0


def cmd_changes(args: argparse.Namespace) -> int:
    from storage.queries import list_changes

    with _read_session() as session:
        rows = list_changes(session, since=args.since, source=args.source, kind=args.kind, limit=args.limit)
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        print("no changes")
    for row in rows:
        flag = "*" if row["relevant"] else " "
        print(
            f"{row['id']:>6} {row['detected_at']} {flag}{row['kind']:<11} {row['source']:<16} "
            f"{_one_line(row['title'])}  [{row['significance']:.2f}] {_one_line(row['summary'])}"
        )
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from storage.queries import document_history

    with _read_session() as session:
        data = document_history(session, args.ref)
    if data is None:
        raise RunError(f"no document {args.ref!r}")
    if args.json:
        _print_json(data)
        return 0
    print(f"document {data['document_id']} [{data['status']}] {_one_line(data['title'])}\n  {data['url']}")
    for v in data["versions"]:
        print(
            f"  version {v['id']:>6}  {v['first_seen_at']} .. {v['last_seen_at']}  {v['chars']} chars  "
            f"{v['content_hash'][:12]}  {_one_line(v['title'])}"
        )
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from policydiff import render_html, render_text
    from policywatch.classify import diff_versions
    from storage.models import DocumentVersion

    with _read_session() as session:
        old, new = session.get(DocumentVersion, args.old), session.get(DocumentVersion, args.new)
        missing = [str(i) for i, v in ((args.old, old), (args.new, new)) if v is None]
        if missing:
            raise RunError(f"no version {', '.join(missing)}")
        result = diff_versions(old, new)
    if args.format == "json":
        _print_json(result.to_json(args.old, args.new))
    elif args.format == "html":
        print(render_html(result))
    else:
        print(render_text(result) if result.changes else "no changes")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from storage.models import DocumentVersion

    with _read_session() as session:
        version = session.get(DocumentVersion, args.version)
        if version is None:
            raise RunError(f"no version {args.version}")
        print(version.title)
        print()
        print(version.text if args.original else version.normalized_text)
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from storage.queries import search_documents

    with _read_session() as session:
        rows = search_documents(session, args.query, limit=args.limit)
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        print("no documents found")
    for row in rows:
        print(
            f"{row['document_id']:>6} v{row['version_id']:<6} {_one_line(row['title'])}\n       {row['url']}"
        )
        print(f"       {_one_line(row['snippet'])}")
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from storage.db import current_revisions, upgrade

    engine = _engine()
    upgrade(engine)
    print(f"database at revision {', '.join(sorted(current_revisions(engine)))}")
    return 0


def _one_line(text: str | None) -> str:
    """Page text is untrusted: no control characters (CR/LF, escapes) reach the terminal."""
    if not text:
        return ""
    return "".join(ch if ch.isprintable() else " " for ch in text)


if __name__ == "__main__":
    sys.exit(main())
