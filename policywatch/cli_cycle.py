"""The `policywatch` commands that do the work: `run` (one cycle), `reextract`, `deliver` and
`digest` (alerts), `db upgrade`.

They change the store or send mail; the read-only commands are in policywatch.cli_read, the
parser and `main` in policywatch.cli.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from policywatch.cli_support import RunError, UsageError, _engine, _one_line, _print_json, failure_line
from policywatch.config import load_config


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


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from storage.db import current_revisions, upgrade

    engine = _engine()
    upgrade(engine)
    print(f"database at revision {', '.join(sorted(current_revisions(engine)))}")
    return 0
