"""The read-only `policywatch` commands: `changes`, `history`, `diff`, `show` and `search`, and
`as_published`, the text as the page prints it that `show` reads out.

They only read the store (migrating it first when needed); the commands that change it are in
policywatch.cli_cycle, the parser and `main` in policywatch.cli.
"""

from __future__ import annotations

import argparse
import sys

from policywatch.cli_support import RunError, _lines, _one_line, _print_json, _read_session


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
    from policywatch.classify import diff_versions
    from policywatch.policydiff import render_html, render_text
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
            from policywatch.extraction import normalise_text

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

    from policywatch.extraction import fold_whitespace

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
