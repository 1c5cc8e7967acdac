"""Load and validate the YAML configuration (see CONTRACT.md, "Configuration").

Validation happens once, at load: every problem is a `ConfigError` that names the key and the
line, so an operator can fix the file without reading a traceback.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "config" / "sources.yaml"

SOURCE_ID_RE = re.compile(r"^[a-z0-9-]+$")
EVENT_KINDS = ("new", "changed", "removed", "restored", "republished")


class ConfigError(ValueError):
    """A configuration problem, with the dotted key and the line it was found on."""

    def __init__(self, message: str, key: str = "", line: int | None = None, path: str | None = None):
        self.key = key
        self.line = line
        self.path = path
        where = f"{path}" if path else "config"
        if line is not None:
            where += f":{line}"
        super().__init__(f"{where}: {key + ': ' if key else ''}{message}")


@dataclass(frozen=True)
class SourceConfig:
    id: str
    name: str
    listing_urls: tuple[str, ...] = ()
    link_pattern: re.Pattern[str] | None = None
    pages: tuple[str, ...] = ()
    content_selector: str | None = None
    min_delay_s: float = 1.0
    # Extensions beyond the contract.
    encoding: str | None = None  # override a site's wrong or missing charset
    max_documents: int | None = None  # cap on documents fetched per cycle
    concurrency: int = 4  # parallel fetches for this source (politeness still applies per host)
    schedule: str = "@hourly"
    allow_private: bool | None = None  # None: decided from the configured URLs

    @property
    def configured_urls(self) -> tuple[str, ...]:
        return self.listing_urls + self.pages


@dataclass(frozen=True)
class SubscriberConfig:
    email: str
    sources: tuple[str, ...] = ("*",)
    keywords: tuple[str, ...] = ()
    events: tuple[str, ...] = ("new", "changed", "removed")
    digest: bool = False


@dataclass(frozen=True)
class Settings:
    first_run_alerts: bool = False
    user_agent: str | None = None
    max_body_bytes: int = 10 * 1024 * 1024
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 20.0
    max_attempts: int = 3
    backoff_base_s: float = 1.0
    respect_robots: bool = True


@dataclass(frozen=True)
class Config:
    sources: tuple[SourceConfig, ...]
    subscribers: tuple[SubscriberConfig, ...] = ()
    settings: Settings = field(default_factory=Settings)
    path: str | None = None

    def source(self, source_id: str) -> SourceConfig:
        for source in self.sources:
            if source.id == source_id:
                return source
        raise ConfigError(f"no source with id {source_id!r}", key="sources")


def resolve_config_path(cli_path: str | None) -> Path:
    if cli_path:
        return Path(cli_path)
    env = os.environ.get("POLICYWATCH_CONFIG")
    if env:
        return Path(env)
    return DEFAULT_CONFIG_PATH


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    config_path = resolve_config_path(str(path) if path else None)
    try:
        text = config_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read configuration: {exc.strerror or exc}", path=str(config_path)) from exc
    return parse_config(text, path=str(config_path))


def parse_config(text: str, path: str | None = None) -> Config:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(f"not valid YAML: {getattr(exc, 'problem', exc)}", line=line, path=path) from exc
    return _Validator(path).config(node)


# --- validation over the YAML node tree, so every error knows its line -------------------------


class _Validator:
    def __init__(self, path: str | None):
        self.path = path

    def fail(self, message: str, key: str, node: yaml.Node | None) -> ConfigError:
        line = node.start_mark.line + 1 if node is not None else None
        return ConfigError(message, key=key, line=line, path=self.path)

    def mapping(self, node: yaml.Node | None, key: str, allowed: dict[str, bool]) -> dict[str, yaml.Node]:
        """Check a mapping against `allowed` (name -> required) and return its value nodes."""
        if not isinstance(node, yaml.MappingNode):
            raise self.fail("must be a mapping", key, node)
        values: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            name = key_node.value
            dotted = f"{key}.{name}" if key else name
            if name not in allowed:
                known = ", ".join(sorted(allowed))
                raise self.fail(f"unknown key (known keys: {known})", dotted, key_node)
            if name in values:
                raise self.fail("duplicate key", dotted, key_node)
            values[name] = value_node
        for name, required in allowed.items():
            if required and name not in values:
                raise self.fail(f"missing required key {name!r}", f"{key}.{name}" if key else name, node)
        return values

    def scalar(self, node: yaml.Node, key: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail("must be a single value", key, node)
        return _construct(node)

    def string(self, node: yaml.Node, key: str, *, allow_null: bool = False) -> str | None:
        value = self.scalar(node, key)
        if value is None and allow_null:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail("must be a non-empty string", key, node)
        return value

    def number(self, node: yaml.Node, key: str, *, minimum: float = 0.0) -> float:
        value = self.scalar(node, key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
            raise self.fail(f"must be a number >= {minimum:g}", key, node)
        return float(value)

    def integer(self, node: yaml.Node, key: str, *, minimum: int = 1, allow_null: bool = False) -> int | None:
        value = self.scalar(node, key)
        if value is None and allow_null:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(f"must be a whole number >= {minimum}", key, node)
        return value

    def boolean(self, node: yaml.Node, key: str) -> bool:
        value = self.scalar(node, key)
        if not isinstance(value, bool):
            raise self.fail("must be true or false", key, node)
        return value

    def sequence(self, node: yaml.Node, key: str) -> list[yaml.Node]:
        if isinstance(node, yaml.ScalarNode) and _construct(node) is None:
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail("must be a list", key, node)
        return list(node.value)

    def url(self, node: yaml.Node, key: str) -> str:
        value = self.string(node, key)
        assert value is not None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise self.fail(f"not an http(s) URL: {value!r}", key, node)
        try:
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError as exc:
            raise self.fail(f"not a valid URL: {value!r} ({exc})", key, node) from exc
        return value

    def config(self, root: yaml.Node | None) -> Config:
        if root is None:
            raise ConfigError("the configuration is empty", key="sources", path=self.path)
        top = self.mapping(root, "", {"sources": True, "subscribers": False, "settings": False})
        sources = tuple(
            self.source(item, f"sources[{i}]")
            for i, item in enumerate(self.sequence(top["sources"], "sources"))
        )
        if not sources:
            raise self.fail("at least one source is needed", "sources", top["sources"])
        seen: set[str] = set()
        for i, source in enumerate(sources):
            if source.id in seen:
                item = top["sources"].value[i]
                raise self.fail(f"duplicate source id {source.id!r}", f"sources[{i}].id", item)
            seen.add(source.id)
        subscribers = tuple(
            self.subscriber(item, f"subscribers[{i}]", seen)
            for i, item in enumerate(
                self.sequence(top["subscribers"], "subscribers") if "subscribers" in top else []
            )
        )
        settings = self.settings(top["settings"]) if "settings" in top else Settings()
        return Config(sources=sources, subscribers=subscribers, settings=settings, path=self.path)

    def source(self, node: yaml.Node, key: str) -> SourceConfig:
        v = self.mapping(
            node,
            key,
            {
                "id": True,
                "name": True,
                "listing_urls": False,
                "link_pattern": False,
                "pages": False,
                "content_selector": False,
                "min_delay_s": False,
                "encoding": False,
                "max_documents": False,
                "concurrency": False,
                "schedule": False,
                "allow_private": False,
            },
        )
        source_id = self.string(v["id"], f"{key}.id")
        assert source_id is not None
        if not SOURCE_ID_RE.match(source_id):
            raise self.fail(f"{source_id!r} must match [a-z0-9-]+", f"{key}.id", v["id"])
        listing_urls = tuple(
            self.url(n, f"{key}.listing_urls[{i}]")
            for i, n in enumerate(
                self.sequence(v["listing_urls"], f"{key}.listing_urls") if "listing_urls" in v else []
            )
        )
        pages = tuple(
            self.url(n, f"{key}.pages[{i}]")
            for i, n in enumerate(self.sequence(v["pages"], f"{key}.pages") if "pages" in v else [])
        )
        pattern = None
        if "link_pattern" in v:
            raw = self.string(v["link_pattern"], f"{key}.link_pattern", allow_null=True)
            if raw is not None:
                try:
                    pattern = re.compile(raw)
                except re.error as exc:
                    raise self.fail(
                        f"bad regex {raw!r}: {exc}", f"{key}.link_pattern", v["link_pattern"]
                    ) from exc
        if listing_urls and pattern is None:
            raise self.fail("listing_urls need a link_pattern", f"{key}.link_pattern", node)
        if not listing_urls and not pages:
            raise self.fail("a source needs listing_urls or pages", f"{key}.listing_urls", node)
        selector = None
        if "content_selector" in v:
            selector = self.string(v["content_selector"], f"{key}.content_selector", allow_null=True)
            if selector is not None:
                self._check_selector(selector, f"{key}.content_selector", v["content_selector"])
        encoding = None
        if "encoding" in v:
            encoding = self.string(v["encoding"], f"{key}.encoding", allow_null=True)
            if encoding is not None:
                import codecs

                try:
                    codecs.lookup(encoding)
                except LookupError as exc:
                    raise self.fail(
                        f"unknown encoding {encoding!r}", f"{key}.encoding", v["encoding"]
                    ) from exc

        def opt(name: str, read: Any, default: Any) -> Any:
            return read(v[name], f"{key}.{name}") if name in v else default

        return SourceConfig(
            id=source_id,
            name=self.string(v["name"], f"{key}.name") or source_id,
            listing_urls=listing_urls,
            link_pattern=pattern,
            pages=pages,
            content_selector=selector,
            min_delay_s=opt("min_delay_s", self.number, 1.0),
            encoding=encoding,
            max_documents=opt("max_documents", lambda n, k: self.integer(n, k, allow_null=True), None),
            concurrency=opt("concurrency", self.integer, 4),
            schedule=opt("schedule", self.string, "@hourly"),
            allow_private=opt("allow_private", self.boolean, None),
        )

    def _check_selector(self, selector: str, key: str, node: yaml.Node) -> None:
        import soupsieve

        try:
            soupsieve.compile(selector)
        except Exception as exc:  # soupsieve raises SelectorSyntaxError, a SyntaxError subclass
            raise self.fail(f"bad CSS selector {selector!r}: {exc}", key, node) from exc

    def subscriber(self, node: yaml.Node, key: str, source_ids: set[str]) -> SubscriberConfig:
        v = self.mapping(
            node, key, {"email": True, "sources": False, "keywords": False, "events": False, "digest": False}
        )
        email = self.string(v["email"], f"{key}.email")
        assert email is not None
        if not re.fullmatch(r"[^@\s]+@[^@\s]+", email) or "\r" in email or "\n" in email:
            raise self.fail(f"not an e-mail address: {email!r}", f"{key}.email", v["email"])
        sources: tuple[str, ...] = ("*",)
        if "sources" in v:
            items = self.sequence(v["sources"], f"{key}.sources")
            sources = tuple(self.string(n, f"{key}.sources[{i}]") or "" for i, n in enumerate(items))
            for i, source_id in enumerate(sources):
                if source_id != "*" and source_id not in source_ids:
                    raise self.fail(f"unknown source id {source_id!r}", f"{key}.sources[{i}]", items[i])
        keywords: tuple[str, ...] = ()
        if "keywords" in v:
            keywords = tuple(
                self.string(n, f"{key}.keywords[{i}]") or ""
                for i, n in enumerate(self.sequence(v["keywords"], f"{key}.keywords"))
            )
        events: tuple[str, ...] = ("new", "changed", "removed")
        if "events" in v:
            items = self.sequence(v["events"], f"{key}.events")
            events = tuple(self.string(n, f"{key}.events[{i}]") or "" for i, n in enumerate(items))
            for i, kind in enumerate(events):
                if kind not in EVENT_KINDS:
                    raise self.fail(
                        f"unknown event {kind!r} (one of {', '.join(EVENT_KINDS)})",
                        f"{key}.events[{i}]",
                        items[i],
                    )
        digest = self.boolean(v["digest"], f"{key}.digest") if "digest" in v else False
        return SubscriberConfig(email=email, sources=sources, keywords=keywords, events=events, digest=digest)

    def settings(self, node: yaml.Node) -> Settings:
        key = "settings"
        v = self.mapping(
            node,
            key,
            {
                "first_run_alerts": False,
                "user_agent": False,
                "max_body_bytes": False,
                "connect_timeout_s": False,
                "read_timeout_s": False,
                "max_attempts": False,
                "backoff_base_s": False,
                "respect_robots": False,
            },
        )
        d = Settings()

        def opt(name: str, read: Any) -> Any:
            return read(v[name], f"{key}.{name}") if name in v else getattr(d, name)

        def positive(n: yaml.Node, k: str) -> float:
            return self.number(n, k, minimum=0.01)

        return Settings(
            first_run_alerts=opt("first_run_alerts", self.boolean),
            user_agent=opt("user_agent", self.string),
            max_body_bytes=opt("max_body_bytes", self.integer),
            connect_timeout_s=opt("connect_timeout_s", positive),
            read_timeout_s=opt("read_timeout_s", positive),
            max_attempts=opt("max_attempts", self.integer),
            backoff_base_s=opt("backoff_base_s", self.number),
            respect_robots=opt("respect_robots", self.boolean),
        )


def _construct(node: yaml.ScalarNode) -> Any:
    """Build the Python value of one scalar node with YAML's safe rules (so `1.0`, `true`, `null` work)."""
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()
