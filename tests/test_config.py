"""Configuration is validated at load: each problem is one error naming the key and the line."""

from __future__ import annotations

import pytest

from policywatch.config import ConfigError, parse_config

GOOD = """
sources:
  - id: gov-cn-zuixin
    name: 中国政府网 最新政策
    listing_urls:
      - https://www.gov.cn/zhengce/zuixin/
    link_pattern: "/zhengce/content/"
    pages: []
    content_selector: null
    min_delay_s: 1.0
subscribers:
  - email: analyst@example.org
    sources: ["*"]
    keywords: []
    events: [new, changed, removed]
    digest: false
settings:
  first_run_alerts: false
"""


def test_contract_example_loads() -> None:
    config = parse_config(GOOD)
    [source] = config.sources
    assert source.id == "gov-cn-zuixin" and source.listing_urls == ("https://www.gov.cn/zhengce/zuixin/",)
    assert source.link_pattern is not None and source.link_pattern.search(
        "https://www.gov.cn/zhengce/content/x"
    )
    assert source.min_delay_s == 1.0 and source.content_selector is None
    [sub] = config.subscribers
    assert sub.events == ("new", "changed", "removed") and not sub.digest
    assert config.settings.first_run_alerts is False


@pytest.mark.parametrize(
    ("edit", "key", "line"),
    [
        (("    min_delay_s: 1.0", "    min_delay_s: 1.0\n    colour: red"), "sources[0].colour", 11),
        (
            ('link_pattern: "/zhengce/content/"', 'link_pattern: "/zhengce/(content/"'),
            "sources[0].link_pattern",
            7,
        ),
        (("https://www.gov.cn/zhengce/zuixin/", "ftp://www.gov.cn/x"), "sources[0].listing_urls[0]", 6),
        (("id: gov-cn-zuixin", "id: Gov_CN"), "sources[0].id", 3),
        (("    name: 中国政府网 最新政策\n", ""), "sources[0].name", 3),
        (("events: [new, changed, removed]", "events: [new, updated]"), "subscribers[0].events[1]", 15),
        (('sources: ["*"]', 'sources: ["nope"]'), "subscribers[0].sources[0]", 13),
        (("email: analyst@example.org", "email: not-an-address"), "subscribers[0].email", 12),
        (("min_delay_s: 1.0", "min_delay_s: -1"), "sources[0].min_delay_s", 10),
        (("first_run_alerts: false", "first_run_alerts: maybe"), "settings.first_run_alerts", 18),
        (("content_selector: null", "content_selector: 'div[[['"), "sources[0].content_selector", 9),
    ],
)
def test_bad_config_names_key_and_line(edit: tuple[str, str], key: str, line: int) -> None:
    text = GOOD.replace(*edit)
    assert text != GOOD
    with pytest.raises(ConfigError) as info:
        parse_config(text, path="sources.yaml")
    assert info.value.key == key
    assert info.value.line == line
    assert f"sources.yaml:{line}: {key}:" in str(info.value)


def test_duplicate_source_ids_are_refused() -> None:
    text = GOOD.replace(
        "subscribers:", GOOD.split("subscribers:")[0].replace("sources:\n", "") + "subscribers:"
    )
    with pytest.raises(ConfigError, match="duplicate source id"):
        parse_config(text)


def test_invalid_yaml_names_the_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("sources:\n  - id: [unclosed\n")
    assert info.value.line is not None
