#!/usr/bin/env python3
"""Build a version store with the PREVIOUS code: the fixture of tests/test_reextract.py.

    git worktree add /tmp/pw-old a07cac0        # the code before EXTRACTOR_REVISION (extractor 1)
    .venv/bin/python scripts/make-old-store.py /tmp/pw-old
    git worktree remove /tmp/pw-old

The old code runs its own CLI (`python -m policywatch.cli run`) in a child process, with
PYTHONPATH and the working directory set to the old checkout (same dependencies, no venv of its
own), against a local HTTP server this script runs. Two cycles: the baseline, then a second one
in which two pages changed:

- demo/plan.html: one figure of the text (a real change: a second version and a `changed` event);
- real/nfj-nea-2026-33.html: only its site footer was reworded. Extractor 1 read that footer as
  body text, so the old code recorded a second version and a `changed` event too; an extractor
  that leaves the footer out reads both versions the same.

Pages served: saved real pages (tests/fixtures/realpages/pages/, whose extraction later
extractors changed) and demo pages (demosite.pages, written to tests/fixtures/stores/pre-reextract/
as the bytes served). Output, next to the store:

- pre-reextract.sqlite: the store, in rollback-journal mode, vacuumed;
- pre-reextract.json: the manifest. The stored URLs contain this run's server address
  (`base_url`): a test serves the same bytes (`pages`, with their sha256, as at the end of the
  second cycle) on a port of its own and rewrites the stored URLs to it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from policywatch.demosite.pages import corpus_paragraphs, gov_cn_page, provincial_page  # noqa: E402

REAL_PAGES = ROOT / "tests" / "fixtures" / "realpages" / "pages"
REAL_KEYS = (
    "ndrc-1283",
    "nfj-nea-2026-33",
    "gd-drc-2026-290",
    "nea-2026-0916-xinchou",
    "govcn-zhengceku-2021-5639225",
    "miit-2013-bitcoin",
)
HTML_UTF8 = "text/html; charset=utf-8"
HTML_NO_CHARSET = "text/html"  # the provincial page declares gb2312 in a <meta> only

PLAN_TITLE = "关于印发“十四五”数字经济发展规划的通知"
PLAN_NUMBER = "国发〔2021〕29号"
PLAN_FIGURE = (
    "到２０２５年，数字经济核心产业增加值占国内生产总值比重达到{}%——数字化创新引领发展能力大幅提升。"
)
FOOTER = "国家能源局南方监管局版权所有，如需转载，请注明来源"
FOOTER_REWORDED = "版权所有：国家能源局南方监管局　未经许可不得转载"


def demo_pages() -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Files of the demo pages (name -> bytes as served): first cycle, and what changed in the second."""
    paras = corpus_paragraphs("004")
    plan = [PLAN_FIGURE.format(10), *paras[:12], "《“十四五”数字经济发展规划》由国务院印发，请认真贯彻执行。"]
    plan_changed = [PLAN_FIGURE.format(12), *plan[1:]]

    def plan_page(body: list[str]) -> bytes:
        page = gov_cn_page(
            PLAN_TITLE, body, doc_number=PLAN_NUMBER, issuer="国务院", pub_date="2022-01-12", counter=7
        )
        return page.encode("utf-8")

    province = provincial_page(
        "江西省人民政府办公厅关于加快数字经济发展的实施意见",
        paras[20:34],
        doc_number="赣府厅发〔2022〕5号",
        pub_date="2022-03-01",
    ).encode("gbk")
    first = {"plan.html": plan_page(plan), "province.html": province}
    return first, {"plan-v2.html": plan_page(plan_changed)}


class Site:
    """A local HTTP server of path -> (bytes, content type); unknown paths (robots.txt) answer 404."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[bytes, str]] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                entry = site.pages.get(self.path)
                body, ctype, status = (*entry, 200) if entry else (b"not found", "text/plain", 404)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        host, port = self.server.server_address[:2]
        self.base_url = f"http://{host}:{port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def run_old_cycle(old: Path, config: Path, db: Path) -> dict[str, object]:
    env = {
        **os.environ,
        "PYTHONPATH": str(old),
        "POLICYWATCH_DATABASE_URL": f"sqlite:///{db}",
        "POLICYWATCH_CONFIG": str(config),
    }
    env.pop("POLICYWATCH_SMTP_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "policywatch.cli", "run", "--json"],
        cwd=old,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise SystemExit(f"the old code's cycle failed ({result.returncode}): {result.stderr}")
    summary = json.loads(result.stdout)
    if summary["errors"]:
        raise SystemExit(f"the old code's cycle had errors: {summary['failures']}")
    return summary


def old_code_is(old: Path) -> str:
    """The old checkout's commit (and a check that it predates extractor revisions)."""
    commit = subprocess.run(
        ["git", "-C", str(old), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import extraction, storage.models as m; "
            "print(hasattr(extraction, 'EXTRACTOR_REVISION'), "
            "'extractor_revision' in m.DocumentVersion.__table__.c, extraction.__file__)",
        ],
        cwd=old,
        env={**os.environ, "PYTHONPATH": str(old)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if check[:2] != ["False", "False"] or not check[2].startswith(str(old.resolve())):
        raise SystemExit(f"{old} is not the code before extractor revisions ({check})")
    return commit


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("old_checkout", type=Path, help="a checkout of the previous code (commit a07cac0)")
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "tests" / "fixtures" / "stores" / "pre-reextract.sqlite",
        help="the store to write (the manifest and demo pages go next to it)",
    )
    args = parser.parse_args()
    old = args.old_checkout.resolve()
    commit = old_code_is(old)
    out: Path = args.out.resolve()
    pages_dir = out.with_suffix("")  # tests/fixtures/stores/pre-reextract/
    pages_dir.mkdir(parents=True, exist_ok=True)

    first, second = demo_pages()
    for name, data in {**first, **second}.items():
        (pages_dir / name).write_bytes(data)
    nfj = (REAL_PAGES / "nfj-nea-2026-33.html").read_text(encoding="utf-8")
    assert nfj.count(FOOTER) == 1
    (pages_dir / "nfj-nea-2026-33-footer2.html").write_text(
        nfj.replace(FOOTER, FOOTER_REWORDED), encoding="utf-8"
    )

    def rel(path: Path) -> str:
        return path.relative_to(ROOT).as_posix()

    # path -> (file, content type), as served in the first cycle; then what the second changed.
    served: dict[str, tuple[Path, str]] = {
        f"/real/{key}.html": (REAL_PAGES / f"{key}.html", HTML_UTF8) for key in REAL_KEYS
    }
    served["/demo/plan.html"] = (pages_dir / "plan.html", HTML_UTF8)
    served["/demo/province.html"] = (pages_dir / "province.html", HTML_NO_CHARSET)
    second_cycle = {
        "/demo/plan.html": (pages_dir / "plan-v2.html", HTML_UTF8),
        "/real/nfj-nea-2026-33.html": (pages_dir / "nfj-nea-2026-33-footer2.html", HTML_UTF8),
    }

    site = Site()
    sources = [
        {"id": "real", "name": "真实页面", "pages": [f"/real/{key}.html" for key in REAL_KEYS]},
        {"id": "demo", "name": "演示站", "pages": ["/demo/plan.html", "/demo/province.html"]},
    ]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "sources.yaml"
            config.write_text(config_yaml(sources, site.base_url), encoding="utf-8")
            db = Path(tmp) / "store.db"
            summaries = []
            for cycle in (served, {**served, **second_cycle}):
                site.pages = {path: (file.read_bytes(), ctype) for path, (file, ctype) in cycle.items()}
                summaries.append(run_old_cycle(old, config, db))
            final = {**served, **second_cycle}
            with sqlite3.connect(db) as conn:
                revisions = sorted(r[0] for r in conn.execute("SELECT version_num FROM alembic_version"))
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                conn.execute("PRAGMA journal_mode=DELETE")
            conn.close()
            with sqlite3.connect(db) as conn:
                conn.execute("VACUUM")
            conn.close()
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(db, out)
    finally:
        site.close()

    manifest = {
        "made_by": "scripts/make-old-store.py",
        "old_commit": commit,
        "alembic_revisions": revisions,
        "base_url": site.base_url,
        "sources": sources,
        "pages": {
            path: {
                "file": rel(file),
                "content_type": ctype,
                "sha256": hashlib.sha256(file.read_bytes()).hexdigest(),
            }
            for path, (file, ctype) in sorted(final.items())
        },
        "cycles": [
            {
                k: s[k]
                for k in ("documents_seen", "fetched", "new", "changed", "unchanged", "baseline", "errors")
            }
            for s in summaries
        ],
    }
    out.with_suffix(".json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    print(f"{out} ({out.stat().st_size} bytes) by {commit[:10]}: cycles {manifest['cycles']}")
    return 0


def config_yaml(sources: list[dict[str, object]], base_url: str) -> str:
    lines = ["sources:"]
    for source in sources:
        lines += [f"  - id: {source['id']}", f"    name: {source['name']}", "    pages:"]
        lines += [f'      - "{base_url}{path}"' for path in source["pages"]]  # type: ignore[attr-defined]
        lines += ["    min_delay_s: 0"]
    lines += ["settings:", "  max_attempts: 2", "  backoff_base_s: 0.01", "  read_timeout_s: 10"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
