"""`policywatch` command line (CONTRACT.md, "Command line").

Exit status: 0 done, 2 bad usage or configuration, 1 could not run (one line on stderr).

This module holds the argparse parser, `main` (the console script's entry point, which turns a
command's exceptions into the exit status), and the commands that serve (`web`, and `demo` for the
local demo sources) or reach into the web app (`references` resolves a document as the web app
does). `web` and `references` stay here because policywatch.cli is the only module below the web
app allowed to import `web` (the import-linter contract in pyproject.toml). The other commands live beside it: policywatch.cli_cycle
(`run`, `reextract`, `deliver`, `digest`, `db upgrade`) and policywatch.cli_read (`changes`,
`history`, `diff`, `show`, `search`), on top of policywatch.cli_support; their names are imported
back here, where other code and tests take them from.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from policywatch.cli_cycle import cmd_db_upgrade, cmd_deliver, cmd_digest, cmd_reextract, cmd_run
from policywatch.cli_read import as_published as as_published  # tests take it from here
from policywatch.cli_read import cmd_changes, cmd_diff, cmd_history, cmd_search, cmd_show
from policywatch.cli_support import RunError, UsageError, _engine, _print_json
from policywatch.cli_support import failure_line as failure_line  # tests take it from here
from policywatch.config import ConfigError
from storage.vocabulary import EventKind, MarkFilter

EVENT_KINDS = tuple(EventKind)


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

    run = sub.add_parser(
        "run",
        help="one cycle: discover, fetch new documents first, re-check the known ones that are due, "
        "version, diff, classify, alert",
    )
    run.add_argument("--source", action="append", metavar="ID", help="only this source (repeatable)")
    run.add_argument(
        "--full",
        action="store_true",
        help="re-check every known document, due or not, with no per-host budget",
    )
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.set_defaults(func=cmd_run)

    changes = sub.add_parser("changes", help="change events, newest first")
    changes.add_argument("--since", metavar="ISO-8601", type=parse_since)
    changes.add_argument("--source", metavar="ID")
    changes.add_argument("--kind", choices=EVENT_KINDS)
    changes.add_argument("--limit", type=int, default=100)
    changes.add_argument("--json", action="store_true")
    changes.add_argument(
        "--mark",
        choices=tuple(MarkFilter),
        help="the analysts' triage mark (unreviewed: none yet)",
    )
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

    show = sub.add_parser("show", help="a version's text as published")
    show.add_argument("version", type=int, metavar="VERSION-ID")
    show_form = show.add_mutually_exclusive_group()
    show_form.add_argument(
        "--normalised", action="store_true", help="the comparison key (quotes, dashes and widths folded)"
    )
    # Before the text as published became the default, it took this flag: still accepted.
    show_form.add_argument("--original", action="store_true", help="the text as published (the default)")
    show.set_defaults(func=cmd_show)

    search = sub.add_parser(
        "search", help="documents by 发文字号 (any brackets), number prefix, issuer, title or text QUERY"
    )
    search.add_argument("query", metavar="QUERY", nargs="?", default="")
    search.add_argument("--limit", type=int, default=50)
    search.add_argument("--json", action="store_true")
    search.add_argument("--history", action="store_true", help="every version, not only the current text")
    search.add_argument("--source", help="only this source")
    search.add_argument("--issuer", help="only documents whose issuer contains this")
    search.add_argument("--since", help="published on or after this date (YYYY-MM-DD)")
    search.add_argument("--until", help="published on or before this date (YYYY-MM-DD)")
    search.add_argument("--status", choices=("active", "removed"))
    search.add_argument("--kind", choices=EVENT_KINDS, help="documents that had such an event")
    search.set_defaults(func=cmd_search)

    graph = sub.add_parser(
        "references",
        help="what a document references and what references it (the policy graph); --rebuild reads them again",
    )
    graph.add_argument("document", metavar="DOCUMENT", nargs="?", help="document id, 发文字号 or URL")
    graph.add_argument("--rebuild", action="store_true", help="read every current version's references again")
    graph.add_argument("--json", action="store_true")
    graph.set_defaults(func=cmd_references)

    reextract = sub.add_parser(
        "reextract",
        help="read the stored pages of older extractors' versions again (no fetch, no events)",
    )
    reextract.add_argument("--source", action="append", metavar="ID", help="only this source (repeatable)")
    reextract.add_argument(
        "--all", action="store_true", dest="everything", help="every version, the current extractor's too"
    )
    reextract.add_argument("--json", action="store_true", help="print the summary as JSON")
    reextract.set_defaults(func=cmd_reextract)

    deliver = sub.add_parser("deliver", help="send pending alerts now")
    deliver.add_argument("--json", action="store_true", help="print the delivery report as JSON")
    deliver.set_defaults(func=cmd_deliver)

    digest = sub.add_parser("digest", help="send the digests that are due")
    digest.add_argument(
        "--now", metavar="ISO-8601", type=parse_since, help="take this as the current time (tests, catch-up)"
    )
    digest.add_argument("--force", action="store_true", help="send every pending digest now, due or not")
    digest.add_argument("--json", action="store_true", help="print the delivery report as JSON")
    digest.set_defaults(func=cmd_digest)

    web = sub.add_parser("web", help="serve the analyst web app (changes, diffs, search, feeds, API)")
    web.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    web.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    web.set_defaults(func=cmd_web)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="DB-COMMAND")
    upgrade = db_sub.add_parser("upgrade", help="apply the schema migrations")
    upgrade.set_defaults(func=cmd_db_upgrade)

    demo = sub.add_parser("demo", help="the local demo sources (config/demo.yaml)")
    demo_sub = demo.add_subparsers(dest="demo_command", required=True, metavar="DEMO-COMMAND")
    demo_state = argparse.ArgumentParser(add_help=False)
    demo_state.add_argument(
        "--state",
        metavar="PATH",
        help="the demo's state file (default: $POLICYWATCH_DEMO_STATE, else var/demo-site.json)",
    )
    serve = demo_sub.add_parser("serve", parents=[demo_state], help="serve the demo sources on 127.0.0.1")
    serve.add_argument(
        "--port", type=int, default=None, help="port (default: $POLICYWATCH_DEMO_PORT, else 8765)"
    )
    serve.set_defaults(func=cmd_demo_serve)
    step = demo_sub.add_parser(
        "step", parents=[demo_state], help="make the next change happen on the demo sources"
    )
    step.add_argument("--reset", action="store_true", help="back to the baseline (step 0)")
    step.set_defaults(func=cmd_demo_step)
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


def cmd_references(args: argparse.Namespace) -> int:
    from policywatch.policy_graph import document_graph, rebuild_references
    from policywatch.web.compare import resolve_document
    from storage.db import ensure_schema, session_factory, unit_of_work

    engine = _engine()
    ensure_schema(engine)
    if args.rebuild:
        with unit_of_work(session_factory(engine)) as session:
            versions, references = rebuild_references(session)
        print(f"read the references of {versions} current version(s) again: {references} reference(s)")
    if not args.document:
        if args.rebuild:
            return 0
        print("policywatch references: give a DOCUMENT (id, 发文字号 or URL) or --rebuild", file=sys.stderr)
        return 2
    with session_factory(engine)() as session:
        doc = resolve_document(session, args.document)
        if doc is None:
            print(f"policywatch references: no document {args.document!r}", file=sys.stderr)
            return 1
        graph = document_graph(session, doc.id)
    graph["provinces"] = [p for p in graph["provinces"] if p["documents"]]
    if args.json:
        _print_json(graph)
        return 0
    for group in graph["references"]:
        print(f"{group['label']} ({group['kind']}):")
        for ref in group["entries"]:
            target = (
                f" → #{ref['target']['id']} {ref['target']['title']}"
                if ref["target"]
                else " (not in the store)"
            )
            print(f"  《{ref['title'] or ''}》 {ref['doc_number'] or ''}{target}")
    for group in graph["referenced_by"]:
        print(f"{group['incoming']} ({group['kind']}):")
        for item in group["entries"]:
            where = f" [{item['province']}]" if item.get("province") else ""
            print(f"  #{item['id']} {item['title']} {item['doc_number'] or ''}{where}")
    for item in graph["repealed_by"]:
        print(f"已废止: repealed by #{item['id']} {item['title']}")
    return 0


def cmd_web(args: argparse.Namespace) -> int:
    from policywatch.web.server import serve
    from storage.db import ensure_schema

    engine = _engine()
    ensure_schema(engine)  # fail here, with one line, when the database is unreachable
    url = engine.url.render_as_string(hide_password=False)
    engine.dispose()
    # One worker process per core, each with a bounded pool and an admission limit (web.server).
    serve(url, host=args.host, port=args.port)
    return 0


def cmd_demo_serve(args: argparse.Namespace) -> int:
    import os

    from policywatch.demosite.server import DemoServer
    from policywatch.demosite.site import DEFAULT_PORT, STEPS, read_step

    raw_port = args.port if args.port is not None else os.environ.get("POLICYWATCH_DEMO_PORT") or DEFAULT_PORT
    try:
        port = int(raw_port)
    except ValueError as exc:
        raise UsageError(f"POLICYWATCH_DEMO_PORT is not a port number: {raw_port!r}") from exc
    try:
        server = DemoServer("127.0.0.1", port, args.state)
    except OSError as exc:
        raise RunError(f"cannot serve on 127.0.0.1:{port}: {exc.strerror or exc}") from exc
    step = read_step(server.state_path)
    print(f"demo sources on {server.base_url}/ (step {step} of {len(STEPS)}; state: {server.state_path})")
    print("`policywatch demo step` makes the next change happen; Ctrl-C stops.", flush=True)
    try:
        server.serve_forever()
    finally:
        server.close()
    return 0


def cmd_demo_step(args: argparse.Namespace) -> int:
    from policywatch.demosite.site import STEPS, advance, state_path, write_step

    if args.reset:
        write_step(0, args.state)
        print(f"demo sources back at step 0 ({state_path(args.state)}); replay it on an empty database")
        return 0
    done = advance(args.state)
    if done is None:
        print(f"every change has happened ({len(STEPS)} steps); `policywatch demo step --reset` starts over")
        return 0
    print(f"step {done.number} of {len(STEPS)} [{done.source}]: {done.change}")
    print(f"the next `policywatch run` records it as: {done.expect}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
