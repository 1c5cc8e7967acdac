"""The `policywatch` command as a user runs it: a real process, real config file, real database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from policywatch.demosite.pages import corpus_paragraphs, gov_cn_page
from tests.support.site import LocalSite


def policywatch(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "policywatch.cli", *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def write_config(tmp_path: Path, site: LocalSite) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(
        f"""
sources:
  - id: local-gov
    name: 本地政府网
    listing_urls: ["{site.url("/list/")}"]
    link_pattern: "/content/"
    pages: ["{site.url("/direct/plan.html")}"]
    min_delay_s: 0
""",
        encoding="utf-8",
    )
    return path


def test_run_twice_over_an_unchanged_site(site: LocalSite, db_url: str, tmp_path: Path) -> None:
    paras = corpus_paragraphs("004")
    site.put("/list/", '<a href="/content/a.html">a</a> <a href="/content/b.html">b</a> <a href="/x">x</a>')
    site.put("/content/a.html", gov_cn_page("关于数字经济的通知", paras[:30], counter=1))
    site.put("/content/b.html", gov_cn_page("关于数据要素的通知", paras[30:60], counter=2))
    site.put("/direct/plan.html", gov_cn_page("数字经济发展规划", paras[60:90], counter=3))
    config = write_config(tmp_path, site)
    env = {"POLICYWATCH_DATABASE_URL": db_url, "POLICYWATCH_CONFIG": str(config)}

    first = policywatch("run", "--json", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    one = json.loads(first.stdout)
    keys = {
        "sources",
        "documents_seen",
        "fetched",
        "not_modified",
        "unchanged",
        "new",
        "changed",
        "removed",
        "errors",
        "alerts_sent",
        "alerts_pending",
    }
    assert keys <= set(one) and all(isinstance(one[k], int) for k in keys)
    assert (one["sources"], one["documents_seen"], one["fetched"], one["errors"]) == (1, 3, 3, 0)

    # The chrome changes between runs (visit counters), the text does not.
    site.put("/content/a.html", gov_cn_page("关于数字经济的通知", paras[:30], counter=100))
    second = policywatch("run", "--json", env=env, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    two = json.loads(second.stdout)
    assert (two["new"], two["changed"], two["removed"]) == (0, 0, 0)
    assert two["unchanged"] == 3

    history = policywatch("history", site.url("/content/a.html"), "--json", env=env, cwd=tmp_path)
    assert history.returncode == 0, history.stderr
    assert len(json.loads(history.stdout)["versions"]) == 1


def test_broken_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "sources:\n  - id: ok-source\n    name: x\n    pages: [http://127.0.0.1:9/a]\n    colour: blue\n",
        encoding="utf-8",
    )
    result = policywatch("--config", str(bad), "run", env={}, cwd=tmp_path)
    assert result.returncode == 2
    assert "sources[0].colour" in result.stderr and ":5" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_database_exits_1_with_one_line(tmp_path: Path, site: LocalSite) -> None:
    config = write_config(tmp_path, site)
    env = {
        "POLICYWATCH_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "POLICYWATCH_CONFIG": str(config),
    }
    result = policywatch("run", env=env, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("policywatch: database error:"), result.stderr
    changes = policywatch("changes", env=env, cwd=tmp_path)
    assert changes.returncode == 1 and len(changes.stderr.strip().splitlines()) == 1


def test_unknown_source_is_a_usage_error(tmp_path: Path, site: LocalSite) -> None:
    config = write_config(tmp_path, site)
    result = policywatch("--config", str(config), "run", "--source", "nope", env={}, cwd=tmp_path)
    assert result.returncode == 2 and "nope" in result.stderr


def test_show_and_diff_neutralise_control_characters_stored_in_old_rows(
    sqlite_url: str, tmp_path: Path
) -> None:
    """Rows written before extraction dropped control characters must not reach the terminal raw."""
    from storage.db import ensure_schema, make_engine, session_factory
    from storage.models import Document, DocumentVersion, Source

    engine = make_engine(sqlite_url)
    ensure_schema(engine)
    with session_factory(engine).begin() as session:
        session.add(Source(id="old", name="old"))
        session.flush()
        doc = Document(source_id="old", url="http://example.org/a")
        session.add(doc)
        session.flush()
        for text in ("第一条\x1b[31m 红色\x07", "第一条\x1b]0;owned\x07 改了"):
            session.add(
                DocumentVersion(
                    document_id=doc.id,
                    content_hash=text,
                    title="标题\x1b[2J",
                    text=text,
                    normalized_text=text,
                    chars=len(text),
                    url=doc.url,
                )
            )
    env = {"POLICYWATCH_DATABASE_URL": sqlite_url}
    for args in (["show", "1"], ["show", "--original", "2"], ["diff", "1", "2"]):
        result = policywatch(*args, env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "\x1b" not in result.stdout and "\x07" not in result.stdout, args
        assert "第一条" in result.stdout


def test_show_prints_the_text_as_published(site: LocalSite, sqlite_url: str, tmp_path: Path) -> None:
    """CONTRACT.md: quotes, dashes and full-width punctuation as the page prints them; NFKC on
    letters and digits (full-width ２０２５ is 2025); --normalised prints the comparison key."""
    body = [
        "到２０２５年，数字经济迈向全面扩展期——《“十四五”数字经济发展规划》（国发〔2021〕29号）明确。",
        "ＧＤＰ比重达到１０％：数字化创新引领发展能力大幅提升。",
    ]
    site.put("/list/", '<a href="/content/a.html">a</a>')
    site.put("/content/a.html", gov_cn_page("关于印发“十四五”数字经济发展规划的通知", body))
    site.put("/direct/plan.html", gov_cn_page("数字经济发展规划", corpus_paragraphs("004")[:5]))
    env = {"POLICYWATCH_DATABASE_URL": sqlite_url, "POLICYWATCH_CONFIG": str(write_config(tmp_path, site))}
    assert policywatch("run", env=env, cwd=tmp_path).returncode == 0
    history = json.loads(
        policywatch("history", site.url("/content/a.html"), "--json", env=env, cwd=tmp_path).stdout
    )
    version = str(history["versions"][0]["id"])

    shown = policywatch("show", version, env=env, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == [
        "关于印发“十四五”数字经济发展规划的通知",
        "",
        "到2025年，数字经济迈向全面扩展期——《“十四五”数字经济发展规划》（国发〔2021〕29号）明确。",
        "GDP比重达到10％：数字化创新引领发展能力大幅提升。",
    ]
    original = policywatch("show", "--original", version, env=env, cwd=tmp_path)
    assert original.returncode == 0 and original.stdout == shown.stdout

    normalised = policywatch("show", "--normalised", version, env=env, cwd=tmp_path)
    assert normalised.returncode == 0, normalised.stderr
    lines = normalised.stdout.splitlines()
    assert lines[2] == '到2025年,数字经济迈向全面扩展期--《"十四五"数字经济发展规划》(国发〔2021〕29号)明确。'
    assert "“" not in normalised.stdout and "，" not in normalised.stdout

    both = policywatch("show", "--original", "--normalised", version, env=env, cwd=tmp_path)
    assert both.returncode == 2
