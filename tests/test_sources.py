"""config/sources.yaml (the real sources), the README's source table, and the new configuration keys."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from policywatch.config import ConfigError, Pagination, load_config, parse_config
from policywatch.extraction.presets import PRESETS

ROOT = Path(__file__).parent.parent
REAL = load_config(ROOT / "config" / "sources.yaml")


def test_the_real_sources_cover_the_issuers() -> None:
    ids = [source.id for source in REAL.sources]
    for prefix in ("gov-cn-", "nda-", "ndrc-", "miit-", "cac-"):
        assert any(i.startswith(prefix) for i in ids), prefix
    provinces = [i for i in ids if i.startswith(("jiangxi-", "guizhou-", "zhejiang-"))]
    assert len(provinces) >= 2
    assert any(i.startswith(("eastmoney-", "chinanews-")) for i in ids)
    # Officials before news: within a cycle the original is recorded before its repost.
    news_at = min(ids.index(i) for i in ids if i.startswith(("eastmoney-", "chinanews-")))
    assert all(not i.startswith(("eastmoney-", "chinanews-")) for i in ids[:news_at])


def test_every_listing_kind_and_pagination_is_used() -> None:
    listings = [listing for source in REAL.sources for listing in source.all_listings]
    assert {listing.kind for listing in listings} == {"html", "json", "rss"}
    assert any(listing.pages for listing in listings if listing.kind == "json")
    assert any(listing.pages for listing in listings if listing.kind == "html")
    nda = REAL.source("nda-zcfb").all_listings[0]
    assert nda.page_urls() == [
        "https://www.nda.gov.cn/sjj/zwgk/zcfb/list/index_pc_1.html",
        "https://www.nda.gov.cn/sjj/zwgk/zcfb/list/index_pc_2.html",
        "https://www.nda.gov.cn/sjj/zwgk/zcfb/list/index_pc_3.html",
    ]


def test_politeness() -> None:
    assert REAL.settings.respect_robots
    for source in REAL.sources:
        assert source.min_delay_s >= 2.0, source.id
        assert source.concurrency <= 2, source.id
        for listing in source.all_listings:
            assert listing.pages is None or listing.pages.max_pages <= 3


def test_the_readme_lists_every_real_source() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Sources and the demo", 1)[1].split("\n## ", 1)[0]
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([a-z0-9-]+)` \|.*$", section, re.M)}
    for source in REAL.sources:
        assert source.id in rows, source.id
        row = rows[source.id]
        first = source.all_listings[0].url
        # The listing URL, written out (long API URLs up to their first parameters).
        assert first.split("?")[0] in row, (source.id, first)
        assert row.rstrip(" |").endswith("no")  # checked against the live site: no, said plainly
        if source.preset:
            assert f"`{source.preset}`" in row
    assert "could be checked against the live sites" in section


def test_demo_and_real_configs_use_only_known_presets() -> None:
    demo = load_config(ROOT / "config" / "demo.yaml")
    for source in (*REAL.sources, *demo.sources):
        assert source.preset is None or source.preset in PRESETS


BASE = """sources:
  - id: s
    name: 测试
    listings:
      - url: https://example.gov.cn/list.json
        kind: json
        items: data.list
        url_field: [url, link]
        pages:
          template: "https://example.gov.cn/list.json?page={n}"
          max: 2
    link_pattern: "/art/"
    preset: nda
settings:
  min_delay_s: 3
  concurrency: 1
"""


def test_listing_keys_load() -> None:
    config = parse_config(BASE)
    [source] = config.sources
    [listing] = source.listings
    assert (listing.kind, listing.items, listing.url_field) == ("json", "data.list", ("url", "link"))
    assert listing.pages == Pagination(
        template="https://example.gov.cn/list.json?page={n}", first=2, max_pages=2
    )
    assert listing.page_urls() == [
        "https://example.gov.cn/list.json",
        "https://example.gov.cn/list.json?page=2",
    ]
    assert source.min_delay_s == 3.0 and source.concurrency == 1  # the settings' politeness defaults
    assert source.content_selector is not None and "TRS_Editor" in source.content_selector
    assert source.configured_urls == ("https://example.gov.cn/list.json",)


@pytest.mark.parametrize(
    ("edit", "key", "line"),
    [
        (("kind: json", "kind: csv"), "sources[0].listings[0].kind", 6),
        (
            (
                "        kind: json\n        items: data.list\n        url_field: [url, link]\n",
                "        kind: rss\n        items: data.list\n",
            ),
            "sources[0].listings[0].items",
            7,
        ),
        (
            ("https://example.gov.cn/list.json\n", "ftp://example.gov.cn/list.json\n"),
            "sources[0].listings[0].url",
            5,
        ),
        (
            ('"https://example.gov.cn/list.json?page={n}"', '"https://example.gov.cn/list.json?page=2"'),
            "sources[0].listings[0].pages.template",
            10,
        ),
        (("          max: 2", "          max: 0"), "sources[0].listings[0].pages.max", 11),
        (("          max: 2", "          last: 2"), "sources[0].listings[0].pages.last", 11),
        (("preset: nda", "preset: nowhere"), "sources[0].preset", 13),
        (("url_field: [url, link]", "url_field: []"), "sources[0].listings[0].url_field", 8),
        (
            ("        kind: json\n", "        kind: html\n        link_pattern: '(['\n"),
            "sources[0].listings[0].link_pattern",
            7,
        ),
        (("  concurrency: 1", "  concurrency: many"), "settings.concurrency", 16),
    ],
)
def test_bad_listing_keys_name_key_and_line(edit: tuple[str, str], key: str, line: int) -> None:
    text = BASE.replace(*edit)
    assert text != BASE
    with pytest.raises(ConfigError) as info:
        parse_config(text, path="sources.yaml")
    assert (info.value.key, info.value.line) == (key, line)
    assert f"sources.yaml:{line}: {key}:" in str(info.value)


def test_an_html_listing_needs_a_link_pattern() -> None:
    text = """sources:
  - id: s
    name: 测试
    listings:
      - url: https://example.gov.cn/list.html
"""
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert info.value.key == "sources[0].listings[0].link_pattern" and info.value.line == 5


def test_a_source_needs_something_to_watch() -> None:
    with pytest.raises(ConfigError, match="listing_urls, listings or pages"):
        parse_config("sources:\n  - id: s\n    name: 测试\n")
