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
from storage.vocabulary import EventKind, MarkFilter

EVENT_KINDS = tuple(EventKind)


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
    smtp = _smtp_settings()  # a malformed POLICYWATCH_SMTP_URL is bad configuration: exit 2 before the run
    from policywatch.pipeline import run_cycle

    summary = run_cycle(config, _engine(), source_ids=args.source, full=args.full)
    if args.json:
        _print_json(summary.to_json())
        if smtp is None and summary.alerts_pending:
            print(_unset_smtp_note(summary.alerts_pending), file=sys.stderr)
        return 0
    print(
        f"{summary.sources} source(s), {summary.documents_seen} document(s): {summary.fetched} fetched, "
        f"{summary.not_modified} not modified, {summary.unchanged} unchanged, {summary.new} new, "
        f"{summary.changed} changed, {summary.removed} removed, {summary.restored} restored, "
        f"{summary.republished} republished, {summary.baseline} baseline, {summary.errors} error(s)"
    )
    from policywatch.planning import freshness_line

    for source_id, fresh in summary.freshness.items():
        print(freshness_line(source_id, fresh))
    for source_id, health in summary.health.items():
        if health.get("state", "up") != "up":
            print(
                f"  {source_id} is {health['state'].upper()} ({health['consecutive_failures']} failing "
                f"cycles in a row): {_one_line(str(health.get('reason')))}"
            )
    for failure in summary.failures[:20]:
        print(failure_line(failure))
    if len(summary.failures) > 20:
        print(f"  … and {len(summary.failures) - 20} more")
    if smtp is None and summary.alerts_pending:
        print(_unset_smtp_note(summary.alerts_pending))
    elif summary.alerts_sent or summary.alerts_pending:
        note = " (not all could be sent: `policywatch deliver` retries)" if summary.alerts_pending else ""
        print(f"alerts: {summary.alerts_sent} sent, {summary.alerts_pending} pending{note}")
    return 0


def _smtp_settings() -> Any:
    from alerts.smtp import SmtpConfigError, settings_from_env

    try:
        return settings_from_env()
    except SmtpConfigError as exc:
        raise UsageError(str(exc)) from exc


def _unset_smtp_note(pending: int) -> str:
    return (
        f"alerts: {pending} pending: POLICYWATCH_SMTP_URL is not set, so no e-mail was sent "
        "(they are kept; `policywatch deliver` sends them once it is set)"
    )


def _alert_engine(args: argparse.Namespace) -> Any:
    """The store, migrated, with the config's subscribers synced (so removed addresses get nothing)."""
    from alerts import sync_subscriptions
    from storage.db import ensure_schema, session_factory

    config = load_config(args.config)
    engine = _engine()
    ensure_schema(engine)
    sync_subscriptions(session_factory(engine), config.subscribers)
    return engine


def _report_delivery(args: argparse.Namespace, report: Any, what: str) -> int:
    if args.json:
        _print_json(report.to_json())
    else:
        print(
            f"{report.messages_sent} {what} sent ({report.alerts_sent} alert(s)), "
            f"{report.pending} alert(s) pending, {report.failed} given up"
        )
    if report.error:
        raise RunError(f"{report.error}; {report.pending} alert(s) stay pending")
    return 0


def cmd_deliver(args: argparse.Namespace) -> int:
    from alerts import deliver_pending

    smtp = _smtp_settings()
    engine = _alert_engine(args)
    if smtp is None:
        report = deliver_pending(engine, None)
        raise RunError(_unset_smtp_note(report.pending).removeprefix("alerts: "))
    return _report_delivery(args, deliver_pending(engine, smtp), "message(s)")


def cmd_digest(args: argparse.Namespace) -> int:
    from alerts import send_due_digests

    smtp = _smtp_settings()
    engine = _alert_engine(args)
    if smtp is None:
        report = send_due_digests(engine, None)
        raise RunError(_unset_smtp_note(report.pending).removeprefix("alerts: "))
    return _report_delivery(args, send_due_digests(engine, smtp, now=args.now, force=args.force), "digest(s)")


def cmd_changes(args: argparse.Namespace) -> int:
    from storage.queries import list_changes

    with _read_session() as session:
        rows = list_changes(
            session, since=args.since, source=args.source, kind=args.kind, limit=args.limit, mark=args.mark
        )
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        print("no changes")
    for row in rows:
        flag = "*" if row["relevant"] else " "
        mark = f" <{row['mark']}>" if row["mark"] else ""
        print(
            f"{row['id']:>6} {row['detected_at']} {flag}{row['kind']:<11} {row['source']:<16} "
            f"{_one_line(row['title'])}  [{row['significance']:.2f}]{mark} {_one_line(row['summary'])}"
        )
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from crawlers import canonical_url
    from storage.queries import document_history

    with _read_session() as session:
        data = document_history(session, args.ref, canonical_url)
    if data is None:
        raise RunError(f"no document {args.ref!r}")
    if args.json:
        _print_json(data)
        return 0
    print(f"document {data['document_id']} [{data['status']}] {_one_line(data['title'])}\n  {data['url']}")
    for v in data["versions"]:
        print(
            f"  version {v['id']:>6}  {v['first_seen_at']} .. {v['last_seen_at']}  {v['chars']} chars  "
            f"{v['content_hash'][:12]}  x{v['extractor_revision'] or '?'}  {_one_line(v['title'])}"
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
        print(_lines(render_text(result)) if result.changes else "no changes")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from storage.models import DocumentVersion

    with _read_session() as session:
        version = session.get(DocumentVersion, args.version)
        if version is None:
            raise RunError(f"no version {args.version}")
        if args.normalised:
            from extraction import normalise_text

            title, text = normalise_text(version.title), version.normalized_text
        else:
            title = as_published(version.title)
            text = "\n".join(filter(None, map(as_published, version.paragraphs)))
        print(_one_line(title))
        print()
        print(_lines(text))
    return 0


# Letters, digits and combining marks: the characters NFKC is applied to by `as_published`.
_NFKC_CATEGORIES = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo", "Nd", "Mn", "Mc", "Me"})


def as_published(text: str) -> str:
    """`text` as the page prints it, for reading (CONTRACT.md `show`): whitespace folded, NFKC on
    letters and digits only (full-width ２０２５ and ＡＢＣ become 2025 and ABC), while punctuation and
    symbols stay as printed (，。“”——《》（）： are not turned into their ASCII look-alikes, as plain
    NFKC would turn ， into , and （ into ( )."""
    import unicodedata

    from extraction import fold_whitespace

    out: list[str] = []
    run: list[str] = []
    for ch in fold_whitespace(text):
        if unicodedata.category(ch) in _NFKC_CATEGORIES:
            run.append(ch)
            continue
        if run:
            out.append(unicodedata.normalize("NFKC", "".join(run)))
            run = []
        out.append(ch)
    if run:
        out.append(unicodedata.normalize("NFKC", "".join(run)))
    return "".join(out)


def cmd_references(args: argparse.Namespace) -> int:
    from policywatch.policy_graph import document_graph, rebuild_references
    from storage.db import ensure_schema, session_factory, unit_of_work
    from web.compare import resolve_document

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


def cmd_reextract(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    for source_id in args.source or []:
        config.source(source_id)  # unknown id -> ConfigError -> exit 2
    from policywatch.reextract import reextract

    summary = reextract(config, _engine(), args.source, everything=args.everything)
    if args.json:
        _print_json(summary.to_json())
        return 0
    print(
        f"{summary.versions_checked} version(s) checked: {summary.rewritten} rewritten, "
        f"{summary.unchanged} unchanged, {summary.skipped} skipped"
    )
    for failure in summary.failures[:20]:
        print(
            f"  skipped version {failure['version_id']} [{failure['source']}] {_one_line(failure['url'])}: "
            f"{_one_line(failure['reason'])}"
        )
    if len(summary.failures) > 20:
        print(f"  … and {len(summary.failures) - 20} more")
    if summary.same_as_previous:
        print(
            f"  {len(summary.same_as_previous)} version(s) now read the same as the version before them "
            "(both kept, no event)"
        )
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from policywatch.search import SearchQuery, search

    query = SearchQuery(
        text=args.query,
        history=args.history,
        source=args.source,
        issuer=args.issuer,
        published_from=args.since,
        published_to=args.until,
        kind=args.kind,
        status=args.status,
        limit=args.limit,
    )
    if not query.text.strip() and not query.has_filters:
        print("policywatch search: give a QUERY or a filter (--source, --issuer, --since …)", file=sys.stderr)
        return 2
    with _read_session() as session:
        rows = search(session, query)
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        print("no documents found")
    for row in rows:
        removed = " [removed 已删除]" if row["status"] == "removed" else ""
        print(
            f"{row['document_id']:>6} v{row['version_id'] or '-':<6} {_one_line(row['title'])}{removed}\n"
            f"       {row['url']}"
        )
        print(f"       {_one_line(row['snippet'])}")
        if args.history and row.get("versions"):
            versions = ", ".join(f"v{v['version_id']}" for v in row["versions"])
            gone = "" if row["in_current"] else f"; gone since {row['gone_since'] or '?'}"
            print(f"       in {versions}{gone}")
    return 0


def cmd_web(args: argparse.Namespace) -> int:
    from storage.db import ensure_schema
    from web.server import serve

    engine = _engine()
    ensure_schema(engine)  # fail here, with one line, when the database is unreachable
    url = engine.url.render_as_string(hide_password=False)
    engine.dispose()
    # One worker process per core, each with a bounded pool and an admission limit (web.server).
    serve(url, host=args.host, port=args.port)
    return 0


def cmd_demo_serve(args: argparse.Namespace) -> int:
    import os

    from demosite.server import DemoServer
    from demosite.site import DEFAULT_PORT, STEPS, read_step

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
    from demosite.site import STEPS, advance, state_path, write_step

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


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from storage.db import current_revisions, upgrade

    engine = _engine()
    upgrade(engine)
    print(f"database at revision {', '.join(sorted(current_revisions(engine)))}")
    return 0


def _lines(text: str) -> str:
    """Multi-line page text for the terminal: line breaks kept, every other control character neutralised."""
    return "\n".join(_one_line(line) for line in text.split("\n"))


def failure_line(failure: dict[str, str]) -> str:
    """One failure of a cycle for the terminal: the URL and the reason come from the web."""
    return f"  error [{failure['source']}] {_one_line(failure['url'])}: {_one_line(failure['error'])}"


def _one_line(text: str | None) -> str:
    """Page text is untrusted: no control characters (CR/LF, escapes) reach the terminal."""
    if not text:
        return ""
    return "".join(ch if ch.isprintable() else " " for ch in text)


if __name__ == "__main__":
    sys.exit(main())
