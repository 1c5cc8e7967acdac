"""The configuration declared once (policywatch.config_models): the committed JSON Schema is the
models', the shipped configurations satisfy it, and the runtime objects take the models' defaults."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from policywatch.config import (
    ConfigError,
    ListingConfig,
    Pagination,
    RecheckConfig,
    Settings,
    SourceConfig,
    SubscriberConfig,
    parse_config,
)
from policywatch.config_models import (
    ListingModel,
    PaginationModel,
    RecheckModel,
    SettingsModel,
    SourceModel,
    SubscriberModel,
)
from policywatch.config_schema import SCHEMA_PATH, config_schema, main, schema_text

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = [ROOT / "config" / "sources.yaml", ROOT / "config" / "demo.yaml"]

SMALL = """sources:
  - id: s
    name: 测试
    pages: ["https://www.gov.cn/a.html"]
settings:
  max_pages: 2
"""


def _validator() -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_committed_schema_is_the_models() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), (
        "config/sources.schema.json is stale: run python -m policywatch.config_schema"
    )
    assert main(["--check"]) == 0


def test_the_schema_is_draft_2020_12_and_refuses_unknown_keys() -> None:
    schema = config_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["required"] == ["sources"]
    for name, definition in [("", schema), *schema["$defs"].items()]:
        assert definition.get("additionalProperties") is False, name


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_the_shipped_configurations_satisfy_the_schema(path: Path) -> None:
    errors = list(_validator().iter_errors(yaml.safe_load(path.read_text(encoding="utf-8"))))
    assert not errors, [(list(e.absolute_path), e.message) for e in errors]


@pytest.mark.parametrize(
    ("edit", "key", "line"),
    [
        (("    name: 测试", "    name: 测试\n    colour: red"), "sources[0].colour", 4),
        (("max_pages: 2", "max_pages: two"), "settings.max_pages", 6),
        (("max_pages: 2", "max_pages: 0"), "settings.max_pages", 6),
        (("  max_pages: 2", "  recheck: {budget_fraction: 2}"), "settings.recheck.budget_fraction", 6),
        (('["https://www.gov.cn/a.html"]', '"https://www.gov.cn/a.html"'), "sources[0].pages", 4),
        (("id: s", "id: S"), "sources[0].id", 2),
        (("    name: 测试\n", "    name: 测试\n    fetcher: curl\n"), "sources[0].fetcher", 4),
    ],
)
def test_a_wrong_key_or_type_is_reported_by_the_schema_and_by_the_loader(
    edit: tuple[str, str], key: str, line: int
) -> None:
    text = SMALL.replace(*edit)
    assert text != SMALL
    assert not list(_validator().iter_errors(yaml.safe_load(SMALL)))
    assert list(_validator().iter_errors(yaml.safe_load(text))), "the schema lets it through"
    with pytest.raises(ConfigError) as info:
        parse_config(text, path="sources.yaml")
    assert (info.value.key, info.value.line) == (key, line)
    assert f"sources.yaml:{line}: {key}:" in str(info.value)


def test_the_loaders_messages_are_the_configurations_words() -> None:
    def message(edit: tuple[str, str]) -> str:
        with pytest.raises(ConfigError) as info:
            parse_config(SMALL.replace(*edit))
        return str(info.value)

    assert "unknown key (known keys: " in message(("  max_pages: 2", "  colour: red"))
    assert "must be a whole number" in message(("max_pages: 2", "max_pages: two"))
    assert "must be a number >= 1" in message(("max_pages: 2", "max_pages: 0"))
    assert "must be true or false" in message(("max_pages: 2", "respect_robots: 1"))
    assert "missing required key 'name'" in message(("    name: 测试\n", ""))
    assert "unknown fetcher 'curl' (one of http, browser)" in message(
        ("    name: 测试\n", "    name: 测试\n    fetcher: curl\n")
    )
    duplicate = message(("  max_pages: 2", "  max_pages: 2\n  max_pages: 3"))
    assert "config:7: settings.max_pages: duplicate key" in duplicate


def test_checks_a_schema_cannot_make_are_still_made_at_load() -> None:
    for edit, key in [
        (("    name: 测试\n", "    name: 测试\n    link_pattern: '(a+)+$'\n"), "sources[0].link_pattern"),
        (("    name: 测试\n", "    name: 测试\n    encoding: rot13\n"), "sources[0].encoding"),
        (("    name: 测试\n", "    name: 测试\n    schedule: '61 * * * *'\n"), "sources[0].schedule"),
        (
            ("    name: 测试\n", "    name: 测试\n    content_selector: 'div[[['\n"),
            "sources[0].content_selector",
        ),
        (("    name: 测试\n", "    name: 测试\n    id: t\n"), "sources[0].id"),  # a duplicate key
        (("id: s", 'id: "s\\n"'), "sources[0].id"),
        (("id: s", "id: !!python/object/apply:os.system ['true']"), "sources[0].id"),
        (("max_pages: 2", "max_pages: !!python/name:os.system ''"), "settings.max_pages"),
    ]:
        text = SMALL.replace(*edit)
        assert text != SMALL
        with pytest.raises(ConfigError) as info:
            parse_config(text)
        assert info.value.key == key and info.value.line is not None, str(info.value)


def test_a_lenient_load_sets_a_broken_entry_aside_with_its_key_and_line() -> None:
    text = SMALL.replace(
        "settings:",
        "  - id: t\n    name: t\n    pages: !!python/object/apply:os.system ['true']\nsettings:",
    )
    config = parse_config(text, lenient=True)
    assert [s.id for s in config.sources] == ["s"]
    [broken] = config.broken
    assert (broken.index, broken.id, broken.error.key, broken.error.line) == (1, "t", "sources[1].pages", 7)
    with pytest.raises(ConfigError):
        parse_config(text)


def _defaults(cls: type[Any]) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def test_the_runtime_objects_take_the_models_defaults() -> None:
    settings = SettingsModel()
    plain = {k: v for k, v in _defaults(Settings).items() if k not in ("recheck", "relevance")}
    assert plain == settings.model_dump(exclude={"recheck", "relevance"})
    assert set(_defaults(Settings)) == set(SettingsModel.model_fields)
    assert _defaults(RecheckConfig) == RecheckModel().model_dump()
    source = _defaults(SourceConfig)
    for name in ("schedule", "fetcher", "attachments"):
        assert source[name] == SourceModel.model_fields[name].default, name
    assert (source["min_delay_s"], source["concurrency"]) == (settings.min_delay_s, settings.concurrency)
    listing = _defaults(ListingConfig)
    for name in ("kind", "items"):
        assert listing[name] == ListingModel.model_fields[name].default, name
    for name in ("url_field", "title_field"):
        assert listing[name] == tuple(ListingModel.model_fields[name].default), name
    assert _defaults(Pagination) == {"first": PaginationModel.model_fields["first"].default, "max_pages": 3}
    subscriber = _defaults(SubscriberConfig)
    for name in ("sources", "events", "digest"):
        default = SubscriberModel.model_fields[name].default
        assert subscriber[name] == (tuple(default) if isinstance(default, list) else default), name


def test_a_source_takes_the_settings_politeness_unless_it_sets_its_own() -> None:
    text = SMALL.replace("settings:", "settings:\n  min_delay_s: 5\n  concurrency: 1")
    [source] = parse_config(text).sources
    assert (source.min_delay_s, source.concurrency) == (5.0, 1)
    text = text.replace("    name: 测试\n", "    name: 测试\n    min_delay_s: 0\n")
    assert parse_config(text).sources[0].min_delay_s == 0.0
