"""Hostile or careless configuration: refused at load with exit 2 and the key named, never a hang
or a raw traceback (each case below was accepted, or crashed with exit 1, before)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import pytest

from policywatch.config import ConfigError, backtracking_risk, parse_config

SOURCE = """
sources:
  - id: {id}
    name: 测试
    listing_urls: ["https://www.example.gov.cn/list/"]
    link_pattern: {pattern}
"""


def _config(id_: str = "demo", pattern: str = '"/content/"') -> str:
    return SOURCE.format(id=id_, pattern=pattern)


def test_python_object_tag_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(_config(id_="!!python/object/apply:os.system ['true']"), encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "policywatch.cli", "--config", str(path), "run"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2, run.stderr
    assert "sources[0].id" in run.stderr and "Traceback" not in run.stderr


def test_source_id_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(_config(id_='"demo\\n"'))
    assert caught.value.key.startswith("sources[0].id")


@pytest.mark.parametrize("pattern", [r"(a+)+$", r"(\w+\s?)*$", r"(.*x)*y", r"(x+x+)+y", r"((ab)*)*c"])
def test_catastrophic_link_patterns_are_refused_at_load(pattern: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(_config(pattern=f"'{pattern}'"))
    assert caught.value.key == "sources[0].link_pattern"
    assert "hang" in str(caught.value)


def test_the_refused_shapes_really_are_catastrophic() -> None:
    """(a+)+$ on 26 characters takes seconds in Python's re: the check refuses a real hazard."""
    started = time.process_time()
    assert re.search(r"(a+)+$", "a" * 22 + "!") is None
    assert time.process_time() - started > 0.05


@pytest.mark.parametrize(
    "pattern",
    [
        "/zhengce/content/",
        r"/t\d{8}_\d+\.html",
        r"^https?://[^/]+/(?:art|content)/\d+/.*\.html?$",
        r"(?:/\d+)+",
        r"(?:[a-z]+-)+\d",
        r"/art/\d{4}/\d{1,2}/\d{1,2}/art_\d+_\d+\.html",
    ],
)
def test_ordinary_link_patterns_are_accepted(pattern: str) -> None:
    assert backtracking_risk(pattern) is None
    parse_config(_config(pattern=f"'{pattern}'"))


def test_every_pattern_the_project_ships_is_accepted() -> None:
    root = Path(__file__).resolve().parents[1]
    for path in [root / "config" / "sources.yaml", *sorted((root / "config").glob("*.yaml"))]:
        if path.exists():
            text = path.read_text(encoding="utf-8")
            for raw in re.findall(r"link_pattern:\s*['\"]?([^'\"\n]+)", text):
                assert backtracking_risk(raw) is None, (path.name, raw)


@pytest.mark.parametrize("encoding", ["rot13", "base64", "undefined", "idna", "punycode", "utf-7", "zlib"])
def test_python_only_codecs_are_not_encodings(encoding: str) -> None:
    text = _config() + f"    encoding: {encoding}\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert caught.value.key == "sources[0].encoding"


@pytest.mark.parametrize("encoding", ["gb2312", "GBK", "gb18030", "utf-8", "big5", "windows-1252", "x-gbk"])
def test_web_encodings_are_accepted(encoding: str) -> None:
    assert parse_config(_config() + f"    encoding: {encoding}\n").sources[0].encoding == encoding


def test_a_cycles_failures_reach_the_terminal_without_control_characters() -> None:
    from policywatch.cli import failure_line

    line = failure_line(
        {
            "source": "s",
            "url": "http://x/\x1b[2Ja\u202e",
            "error": "HTTP 500 \x1b]0;pwned\x07\r\nBcc: x\x9b31m",
        }
    )
    assert not any(unicodedata.category(ch) in ("Cc", "Cf") for ch in line), repr(line)
