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

from policywatch.relevance import DEFAULT_CLASSIFIER, RelevanceClassifier
from policywatch.schedule import RecheckPolicy, schedule_interval_s

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "config" / "sources.yaml"

SOURCE_ID_RE = re.compile(r"[a-z0-9-]+\Z")  # \Z: "$" would let a trailing newline through
EVENT_KINDS = ("new", "changed", "removed", "restored", "republished")
# What a subscriber can ask for: the change events, and `important` (an analyst marked a change so).
SUBSCRIBABLE_EVENTS = (*EVENT_KINDS, "important")


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


LISTING_KINDS = ("html", "json", "rss", "hanweb")
FETCHERS = ("http", "browser")
PAGE_PLACEHOLDER = "{n}"


@dataclass(frozen=True)
class Pagination:
    """Further pages of a listing: `template` with "{n}" replaced by first, first+1, …"""

    template: str
    first: int = 2  # the value of {n} on the second page (index_1.html: 1; index_pc_2.html: 2)
    max_pages: int = 3  # pages read per cycle, the first one included

    def urls(self, first_url: str) -> list[str]:
        more = [
            self.template.replace(PAGE_PLACEHOLDER, str(self.first + i)) for i in range(self.max_pages - 1)
        ]
        return [first_url, *more]


@dataclass(frozen=True)
class ListingConfig:
    """One listing of a source: an HTML page of links, a JSON document of items, or an RSS/Atom feed."""

    url: str
    kind: str = "html"  # html | json | rss
    link_pattern: re.Pattern[str] | None = None  # html: required (else the source's); json/rss: a filter
    items: str = ""  # json: dotted path to the list of items ("" = the document itself)
    url_field: tuple[str, ...] = ("url",)  # json: dotted paths in an item, the first present wins
    title_field: tuple[str, ...] = ("title",)
    date_field: tuple[str, ...] = ()
    html_field: str | None = None  # json: dotted path to an HTML fragment whose links are the items
    pages: Pagination | None = None

    def page_urls(self) -> list[str]:
        if self.kind == "hanweb":
            from crawlers.listings import hanweb_page_urls

            return hanweb_page_urls(self.url, self.pages.max_pages if self.pages else 1)
        return self.pages.urls(self.url) if self.pages else [self.url]


@dataclass(frozen=True)
class RecheckConfig:
    """`recheck:` of `settings` (every source's defaults) or of a source (overrides, key by key).

    None: derived (policywatch.schedule): the minimum interval is the source's schedule interval, the
    maximum 7 days, the budget what the politeness delay lets one host answer in 80% of a cycle.
    """

    min_interval_s: float | None = None  # never re-check a document sooner than this
    max_interval_s: float | None = None  # never wait longer than this, however dormant the page
    fresh_age_s: float | None = None  # documents younger than this are re-checked every cycle
    request_cost_s: float | None = None  # the detection delay one request is worth (see schedule)
    budget: int | None = None  # requests to one host per cycle (listing pages included)
    budget_fraction: float | None = None  # the share of a cycle's interval the budget may fill
    # Spend what the budget leaves after the due documents on those due soonest (None: yes). Off:
    # only due documents are re-checked, however much budget is left.
    early: bool | None = None

    POLICY_KEYS = ("min_interval_s", "max_interval_s", "fresh_age_s", "request_cost_s")

    def over(self, defaults: RecheckConfig) -> RecheckConfig:
        """These values, and `defaults`' where these have none."""
        return RecheckConfig(
            **{
                name: getattr(self, name) if getattr(self, name) is not None else getattr(defaults, name)
                for name in self.__dataclass_fields__
            }
        )

    def policy(self, schedule: str) -> RecheckPolicy:
        """The re-check policy of a source run on `schedule` (ValueError if the values disagree)."""
        overrides = {k: getattr(self, k) for k in self.POLICY_KEYS if getattr(self, k) is not None}
        return RecheckPolicy.for_schedule(schedule, **overrides)


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
    listings: tuple[ListingConfig, ...] = ()  # JSON / RSS / paginated listings (listing_urls: plain HTML)
    preset: str | None = None  # extraction preset (extraction.presets); sets content_selector
    recheck: RecheckConfig = field(default_factory=RecheckConfig)  # settings' recheck: under its own
    # The hosts the documents are fetched from, when not those of the configured URLs (a listing on
    # a search API, documents on www.gov.cn): Airflow's pools and the host budgets are per host.
    document_hosts: tuple[str, ...] = ()
    # CONTRACT.md: how pages are loaded (http: requests; browser: headless Chromium, scripts run),
    # and whether files linked from a document's body are watched as documents of their own.
    fetcher: str = "http"
    attachments: bool = True

    @property
    def recheck_policy(self) -> RecheckPolicy:
        return self.recheck.policy(self.schedule)

    @property
    def fetch_hosts(self) -> tuple[str, ...]:
        """Where the documents are expected: `document_hosts`, else the configured URLs' hosts."""
        if self.document_hosts:
            return self.document_hosts
        hosts = (
            urlsplit(u).hostname or ""
            for u in (*self.pages, *self.listing_urls, *(x.url for x in self.listings))
        )
        return tuple(dict.fromkeys(h for h in hosts if h))

    @property
    def configured_urls(self) -> tuple[str, ...]:
        return self.listing_urls + tuple(listing.url for listing in self.listings) + self.pages

    @property
    def all_listings(self) -> tuple[ListingConfig, ...]:
        """Every listing: `listing_urls` as HTML listings with the source's link pattern, then `listings`."""
        plain = tuple(ListingConfig(url=url, link_pattern=self.link_pattern) for url in self.listing_urls)
        return plain + self.listings


@dataclass(frozen=True)
class SubscriberConfig:
    email: str
    sources: tuple[str, ...] = ("*",)
    keywords: tuple[str, ...] = ()
    events: tuple[str, ...] = ("new", "changed", "removed")
    digest: bool = False
    # 发文字号 or titles: only events of documents that cite, implement, amend or repeal one of them.
    follows: tuple[str, ...] = ()


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
    # Politeness defaults for sources that set none.
    min_delay_s: float = 1.0
    concurrency: int = 4
    max_pages: int = 3  # pages of a paginated listing read per cycle
    # Processes that read pages of a source with no politeness delay (min_delay_s 0): parsing is
    # CPU-bound, one Python process uses one core. None: one per core. Airflow tasks use one each.
    processes: int | None = None
    # Airflow's execution_timeout for the pipeline's tasks: a backstop, under the hourly schedule,
    # for whatever the per-request deadlines do not bound (a task past it is failed and retried).
    task_timeout_s: float = 55 * 60
    # Airflow's first retry of a failed task waits this long (then twice as long each time, at most
    # 30 minutes): a batch whose worker died is re-run soon, on another worker.
    task_retry_delay_s: float = 60.0
    # A source's Airflow run still going this many schedule intervals after it was queued mails the
    # operators once (policywatch.overdue, an Airflow Deadline Alert); 0: no deadline.
    overdue_after_intervals: float = 3.0
    recheck: RecheckConfig = field(default_factory=RecheckConfig)
    # Failing cycles in a row that make a source degraded (policywatch.health).
    degraded_after: int = 2
    relevance: RelevanceClassifier = field(default_factory=lambda: DEFAULT_CLASSIFIER)


@dataclass(frozen=True)
class BrokenSource:
    """A source entry that failed validation, kept by a lenient load (`load_config(lenient=True)`)."""

    index: int  # its position under `sources:`
    id: str | None  # its id when that much is readable and valid, else None
    error: ConfigError


@dataclass(frozen=True)
class Config:
    sources: tuple[SourceConfig, ...]
    subscribers: tuple[SubscriberConfig, ...] = ()
    settings: Settings = field(default_factory=Settings)
    path: str | None = None
    # Lenient loads only (the Airflow DAG file): the source entries that failed validation, so that
    # one broken source never hides the others.
    broken: tuple[BrokenSource, ...] = ()

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


def load_config(path: str | os.PathLike[str] | None = None, *, lenient: bool = False) -> Config:
    """The validated configuration. `lenient`: a source entry that fails validation is set aside in
    `Config.broken` instead of failing the whole file (settings, subscribers and YAML syntax still
    must be valid): the Airflow DAG file uses it, so one broken source never hides the others."""
    config_path = resolve_config_path(str(path) if path else None)
    try:
        text = config_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read configuration: {exc.strerror or exc}", path=str(config_path)) from exc
    return parse_config(text, path=str(config_path), lenient=lenient)


def parse_config(text: str, path: str | None = None, *, lenient: bool = False) -> Config:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(f"not valid YAML: {getattr(exc, 'problem', exc)}", line=line, path=path) from exc
    return _Validator(path).config(node, lenient=lenient)


def _source_id_of(node: yaml.Node) -> str | None:
    """The id of a source entry, if it has a valid one (to name the broken source's DAG)."""
    if not isinstance(node, yaml.MappingNode):
        return None
    for key_node, value_node in node.value:
        if key_node.value == "id" and isinstance(value_node, yaml.ScalarNode):
            value = str(value_node.value)
            return value if SOURCE_ID_RE.match(value) else None
    return None


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
        return self.construct(node, key)

    def construct(self, node: yaml.ScalarNode, key: str) -> Any:
        try:
            return _construct(node)
        except yaml.YAMLError as exc:  # a tag the safe loader refuses (!!python/object...)
            raise self.fail(f"unsupported value: {getattr(exc, 'problem', exc)}", key, node) from exc

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
        if isinstance(node, yaml.ScalarNode) and self.construct(node, key) is None:
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

    def config(self, root: yaml.Node | None, *, lenient: bool = False) -> Config:
        if root is None:
            raise ConfigError("the configuration is empty", key="sources", path=self.path)
        top = self.mapping(root, "", {"sources": True, "subscribers": False, "settings": False})
        # Settings first: they hold the defaults of the sources (politeness).
        settings = self.settings(top["settings"]) if "settings" in top else Settings()
        sources: list[SourceConfig] = []
        broken: list[BrokenSource] = []
        seen: set[str] = set()
        items = self.sequence(top["sources"], "sources")
        if not items:
            raise self.fail("at least one source is needed", "sources", top["sources"])
        for i, item in enumerate(items):
            try:
                source = self.source(item, f"sources[{i}]", settings)
                if source.id in seen:
                    raise self.fail(f"duplicate source id {source.id!r}", f"sources[{i}].id", item)
            except ConfigError as error:
                if not lenient:
                    raise
                broken.append(BrokenSource(index=i, id=_source_id_of(item), error=error))
                continue
            seen.add(source.id)
            sources.append(source)
        # A subscriber may name a broken source: it is still that source's id.
        named = seen | {b.id for b in broken if b.id}
        subscribers = tuple(
            self.subscriber(item, f"subscribers[{i}]", named)
            for i, item in enumerate(
                self.sequence(top["subscribers"], "subscribers") if "subscribers" in top else []
            )
        )
        return Config(
            sources=tuple(sources),
            subscribers=subscribers,
            settings=settings,
            path=self.path,
            broken=tuple(broken),
        )

    def pattern(self, node: yaml.Node, key: str) -> re.Pattern[str] | None:
        raw = self.string(node, key, allow_null=True)
        if raw is None:
            return None
        try:
            compiled = re.compile(raw)
        except re.error as exc:
            raise self.fail(f"bad regex {raw!r}: {exc}", key, node) from exc
        risk = backtracking_risk(raw)
        if risk:
            raise self.fail(f"regex {raw!r} {risk}: it could hang a cycle on a hostile link", key, node)
        return compiled

    def source(self, node: yaml.Node, key: str, settings: Settings | None = None) -> SourceConfig:
        settings = settings or Settings()
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
                "listings": False,
                "preset": False,
                "recheck": False,
                "document_hosts": False,
                "fetcher": False,
                "attachments": False,
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
        pattern = self.pattern(v["link_pattern"], f"{key}.link_pattern") if "link_pattern" in v else None
        if listing_urls and pattern is None:
            raise self.fail("listing_urls need a link_pattern", f"{key}.link_pattern", node)
        listings = tuple(
            self.listing(n, f"{key}.listings[{i}]", pattern, settings)
            for i, n in enumerate(self.sequence(v["listings"], f"{key}.listings") if "listings" in v else [])
        )
        if not listing_urls and not listings and not pages:
            raise self.fail("a source needs listing_urls, listings or pages", f"{key}.listing_urls", node)
        preset = None
        if "preset" in v:
            preset = self.string(v["preset"], f"{key}.preset", allow_null=True)
            if preset is not None:
                from extraction.presets import PRESETS

                if preset not in PRESETS:
                    known = ", ".join(sorted(PRESETS))
                    raise self.fail(
                        f"unknown preset {preset!r} (known: {known})", f"{key}.preset", v["preset"]
                    )
        selector = None
        if "content_selector" in v:
            selector = self.string(v["content_selector"], f"{key}.content_selector", allow_null=True)
            if selector is not None:
                self._check_selector(selector, f"{key}.content_selector", v["content_selector"])
        if selector is None and preset is not None:
            # An explicit content_selector wins; otherwise the preset's body containers.
            from extraction.presets import preset_selector

            selector = preset_selector(preset)
        encoding = None
        if "encoding" in v:
            encoding = self.string(v["encoding"], f"{key}.encoding", allow_null=True)
            if encoding is not None:
                from crawlers.encoding import web_codec

                # The web's encodings only (WHATWG labels): a Python-only codec (rot13, idna,
                # undefined...) would make every page of the source undecodable.
                if web_codec(encoding) is None:
                    raise self.fail(
                        f"unknown encoding {encoding!r} (a web encoding label such as gb18030, gbk, utf-8, big5)",
                        f"{key}.encoding",
                        v["encoding"],
                    )

        def opt(name: str, read: Any, default: Any) -> Any:
            return read(v[name], f"{key}.{name}") if name in v else default

        schedule = opt("schedule", self.string, "@hourly")
        try:
            schedule_interval_s(schedule)
        except ValueError as exc:
            raise self.fail(str(exc), f"{key}.schedule", v["schedule"]) from exc
        recheck = settings.recheck
        if "recheck" in v:
            recheck = self.recheck(v["recheck"], f"{key}.recheck").over(settings.recheck)
        try:
            recheck.policy(schedule)
        except ValueError as exc:
            where = "recheck" if "recheck" in v else "schedule" if "schedule" in v else "id"
            raise self.fail(f"{exc} (schedule {schedule!r})", f"{key}.{where}", v.get(where, node)) from exc
        fetcher = opt("fetcher", self.string, "http")
        if fetcher not in FETCHERS:
            raise self.fail(
                f"unknown fetcher {fetcher!r} (one of {', '.join(FETCHERS)})", f"{key}.fetcher", v["fetcher"]
            )
        document_hosts = ()
        if "document_hosts" in v:
            document_hosts = tuple(
                self.host(n, f"{key}.document_hosts[{i}]")
                for i, n in enumerate(self.sequence(v["document_hosts"], f"{key}.document_hosts"))
            )

        return SourceConfig(
            id=source_id,
            name=self.string(v["name"], f"{key}.name") or source_id,
            listing_urls=listing_urls,
            link_pattern=pattern,
            pages=pages,
            content_selector=selector,
            min_delay_s=opt("min_delay_s", self.number, settings.min_delay_s),
            encoding=encoding,
            max_documents=opt("max_documents", lambda n, k: self.integer(n, k, allow_null=True), None),
            concurrency=opt("concurrency", self.integer, settings.concurrency),
            schedule=schedule,
            allow_private=opt("allow_private", self.boolean, None),
            listings=listings,
            preset=preset,
            recheck=recheck,
            document_hosts=document_hosts,
            fetcher=fetcher,
            attachments=opt("attachments", self.boolean, True),
        )

    def host(self, node: yaml.Node, key: str) -> str:
        value = (self.string(node, key) or "").strip().lower().rstrip(".")
        if not re.fullmatch(
            r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]{1,5})?", value
        ):
            raise self.fail(f"not a host name: {value!r} (e.g. www.gov.cn)", key, node)
        return value.split(":", 1)[0]

    def recheck(self, node: yaml.Node, key: str) -> RecheckConfig:
        v = self.mapping(node, key, {name: False for name in RecheckConfig.__dataclass_fields__})

        def seconds(name: str) -> float | None:
            return self.number(v[name], f"{key}.{name}", minimum=1) if name in v else None

        budget = self.integer(v["budget"], f"{key}.budget") if "budget" in v else None
        fraction = None
        if "budget_fraction" in v:
            fraction = self.number(v["budget_fraction"], f"{key}.budget_fraction", minimum=0.01)
            if fraction > 1:
                raise self.fail("must be a number in (0, 1]", f"{key}.budget_fraction", v["budget_fraction"])
        config = RecheckConfig(
            min_interval_s=seconds("min_interval_s"),
            max_interval_s=seconds("max_interval_s"),
            fresh_age_s=seconds("fresh_age_s"),
            request_cost_s=seconds("request_cost_s"),
            budget=budget,
            budget_fraction=fraction,
            early=self.boolean(v["early"], f"{key}.early") if "early" in v else None,
        )
        if (
            None not in (config.min_interval_s, config.max_interval_s)
            and config.min_interval_s > config.max_interval_s
        ):  # type: ignore[operator]
            raise self.fail(
                "min_interval_s must not exceed max_interval_s", f"{key}.min_interval_s", v["min_interval_s"]
            )
        return config

    def field_paths(self, node: yaml.Node, key: str) -> tuple[str, ...]:
        """A dotted path in a JSON item, or a list of them (the first one present wins)."""
        if isinstance(node, yaml.SequenceNode):
            paths = tuple(self.string(n, f"{key}[{i}]") or "" for i, n in enumerate(node.value))
            if not paths:
                raise self.fail("must name at least one field", key, node)
            return paths
        return (self.string(node, key) or "",)

    def listing(
        self, node: yaml.Node, key: str, source_pattern: re.Pattern[str] | None, settings: Settings
    ) -> ListingConfig:
        v = self.mapping(
            node,
            key,
            {
                "url": True,
                "kind": False,
                "link_pattern": False,
                "items": False,
                "url_field": False,
                "title_field": False,
                "date_field": False,
                "html_field": False,
                "pages": False,
            },
        )
        url = self.url(v["url"], f"{key}.url")
        kind = self.string(v["kind"], f"{key}.kind") if "kind" in v else "html"
        if kind not in LISTING_KINDS:
            raise self.fail(
                f"unknown listing kind {kind!r} (one of {', '.join(LISTING_KINDS)})", f"{key}.kind", v["kind"]
            )
        pattern = self.pattern(v["link_pattern"], f"{key}.link_pattern") if "link_pattern" in v else None
        pattern = pattern or source_pattern
        html_field = self.string(v["html_field"], f"{key}.html_field") if "html_field" in v else None
        json_only = ("items", "url_field", "title_field", "date_field", "html_field")
        if kind != "json":
            for name in json_only:
                if name in v:
                    raise self.fail(f"only a json listing has {name}", f"{key}.{name}", v[name])
        if pattern is None and (kind == "html" or html_field is not None):
            where = "link_pattern" if "link_pattern" in v else "url"
            raise self.fail(
                "an HTML listing needs a link_pattern (here or on the source)",
                f"{key}.link_pattern",
                v[where],
            )
        items = ""
        if "items" in v:
            items = self.scalar(v["items"], f"{key}.items")
            if items is None:
                items = ""
            if not isinstance(items, str):
                raise self.fail("must be a dotted path such as data.list", f"{key}.items", v["items"])
        if html_field is not None and any(name in v for name in ("items", "url_field", "title_field")):
            raise self.fail(
                "html_field replaces items, url_field and title_field", f"{key}.html_field", v["html_field"]
            )
        return ListingConfig(
            url=url,
            kind=kind,
            link_pattern=pattern,
            items=items,
            url_field=self.field_paths(v["url_field"], f"{key}.url_field") if "url_field" in v else ("url",),
            title_field=self.field_paths(v["title_field"], f"{key}.title_field")
            if "title_field" in v
            else ("title",),
            date_field=self.field_paths(v["date_field"], f"{key}.date_field") if "date_field" in v else (),
            html_field=html_field,
            pages=self.pagination(v["pages"], f"{key}.pages", settings, hanweb=kind == "hanweb")
            if "pages" in v
            else None,
        )

    def pagination(
        self, node: yaml.Node, key: str, settings: Settings, *, hanweb: bool = False
    ) -> Pagination:
        if hanweb:
            # A Hanweb dataproxy.jsp list pages by its startrecord/endrecord window: only how many.
            w = self.mapping(node, key, {"max": False})
            max_pages = self.integer(w["max"], f"{key}.max") if "max" in w else settings.max_pages
            assert max_pages is not None
            return Pagination(template="", first=0, max_pages=max_pages)
        v = self.mapping(node, key, {"template": True, "first": False, "max": False})
        template_node = v["template"]
        template = self.string(template_node, f"{key}.template")
        assert template is not None
        if PAGE_PLACEHOLDER not in template:
            raise self.fail(
                f"the template needs a {PAGE_PLACEHOLDER} where the page number goes",
                f"{key}.template",
                template_node,
            )
        # Validate the URL the template makes, with the placeholder filled in.
        filled = yaml.ScalarNode("tag:yaml.org,2002:str", template.replace(PAGE_PLACEHOLDER, "2"))
        filled.start_mark = template_node.start_mark
        self.url(filled, f"{key}.template")
        first = self.integer(v["first"], f"{key}.first", minimum=0) if "first" in v else 2
        max_pages = self.integer(v["max"], f"{key}.max") if "max" in v else settings.max_pages
        assert first is not None and max_pages is not None
        return Pagination(template=template, first=first, max_pages=max_pages)

    def _check_selector(self, selector: str, key: str, node: yaml.Node) -> None:
        import soupsieve

        try:
            soupsieve.compile(selector)
        except Exception as exc:  # soupsieve raises SelectorSyntaxError, a SyntaxError subclass
            raise self.fail(f"bad CSS selector {selector!r}: {exc}", key, node) from exc

    def subscriber(self, node: yaml.Node, key: str, source_ids: set[str]) -> SubscriberConfig:
        v = self.mapping(
            node,
            key,
            {
                "email": True,
                "sources": False,
                "keywords": False,
                "events": False,
                "digest": False,
                "follows": False,
            },
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
                if kind not in SUBSCRIBABLE_EVENTS:
                    raise self.fail(
                        f"unknown event {kind!r} (one of {', '.join(SUBSCRIBABLE_EVENTS)})",
                        f"{key}.events[{i}]",
                        items[i],
                    )
        digest = self.boolean(v["digest"], f"{key}.digest") if "digest" in v else False
        follows: tuple[str, ...] = ()
        if "follows" in v:
            items = self.sequence(v["follows"], f"{key}.follows")
            follows = tuple(
                (self.string(n, f"{key}.follows[{i}]") or "").strip() for i, n in enumerate(items)
            )
            for i, followed in enumerate(follows):
                if not followed.strip('《》"“” '):
                    raise self.fail("empty: a 发文字号 or a title", f"{key}.follows[{i}]", items[i])
        return SubscriberConfig(
            email=email, sources=sources, keywords=keywords, events=events, digest=digest, follows=follows
        )

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
                "min_delay_s": False,
                "concurrency": False,
                "max_pages": False,
                "processes": False,
                "task_timeout_s": False,
                "task_retry_delay_s": False,
                "overdue_after_intervals": False,
                "recheck": False,
                "degraded_after": False,
                "relevance": False,
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
            min_delay_s=opt("min_delay_s", self.number),
            concurrency=opt("concurrency", self.integer),
            max_pages=opt("max_pages", self.integer),
            processes=opt("processes", self.integer),
            task_timeout_s=opt("task_timeout_s", lambda n, k: self.number(n, k, minimum=60)),
            task_retry_delay_s=opt("task_retry_delay_s", lambda n, k: self.number(n, k, minimum=1)),
            overdue_after_intervals=opt("overdue_after_intervals", lambda n, k: self.number(n, k, minimum=0)),
            recheck=self.recheck(v["recheck"], f"{key}.recheck") if "recheck" in v else d.recheck,
            degraded_after=opt("degraded_after", self.integer),
            relevance=self.relevance(v["relevance"], f"{key}.relevance") if "relevance" in v else d.relevance,
        )

    def weights(self, node: yaml.Node, key: str) -> dict[str, float]:
        """A mapping term -> weight (a number >= 0)."""
        if not isinstance(node, yaml.MappingNode):
            raise self.fail("must be a mapping of term: weight", key, node)
        weights: dict[str, float] = {}
        for key_node, value_node in node.value:
            term = self.string(key_node, key)
            assert term is not None
            dotted = f"{key}.{term}"
            if term in weights:
                raise self.fail("duplicate term", dotted, key_node)
            weights[term] = self.number(value_node, dotted)
        return weights

    def relevance(self, node: yaml.Node, key: str) -> RelevanceClassifier:
        v = self.mapping(
            node,
            key,
            {
                "threshold": False,
                "title_factor": False,
                "max_count": False,
                "core_weight": False,
                "terms": False,
                "extra_terms": False,
            },
        )
        terms = self.weights(v["terms"], f"{key}.terms") if "terms" in v else None
        if terms is not None and not any(w > 0 for w in terms.values()):
            raise self.fail("at least one term needs a weight above 0", f"{key}.terms", v["terms"])
        extra = self.weights(v["extra_terms"], f"{key}.extra_terms") if "extra_terms" in v else None
        options: dict[str, Any] = {}
        for name in ("threshold", "title_factor", "core_weight"):
            if name in v:
                options[name] = self.number(v[name], f"{key}.{name}")
        if "max_count" in v:
            options["max_count"] = self.integer(v["max_count"], f"{key}.max_count")
        return RelevanceClassifier.from_weights(terms, extra=extra, **options)


_UNBOUNDED = 4294967295  # sre's MAXREPEAT
# Characters a delimiter test runs over: link patterns match canonical URLs (ASCII, percent-encoded),
# plus a few others so that classes such as \w and \s are told apart from ASCII-only ones.
_SAMPLE = [chr(i) for i in range(128)] + ["中", "é", "\u3000", "\xa0"]
_CATEGORIES = {
    "CATEGORY_DIGIT": str.isdigit,
    "CATEGORY_NOT_DIGIT": lambda c: not c.isdigit(),
    "CATEGORY_SPACE": str.isspace,
    "CATEGORY_NOT_SPACE": lambda c: not c.isspace(),
    "CATEGORY_WORD": lambda c: c.isalnum() or c == "_",
    "CATEGORY_NOT_WORD": lambda c: not (c.isalnum() or c == "_"),
}


def _chars(op: str, arg: Any) -> frozenset[str] | None:
    """The sample characters one single-character item matches; None for anything else."""
    if op == "LITERAL":
        return frozenset({chr(arg)})
    if op == "NOT_LITERAL":
        return frozenset(c for c in _SAMPLE if c != chr(arg))
    if op == "ANY":
        return frozenset(c for c in _SAMPLE if c != "\n")
    if op == "IN":
        negate = any(str(o) == "NEGATE" for o, _ in arg)
        tests = []
        for o, a in arg:
            o = str(o)
            if o == "LITERAL":
                tests.append(lambda c, a=a: c == chr(a))
            elif o == "RANGE":
                tests.append(lambda c, a=a: a[0] <= ord(c) <= a[1])
            elif o == "CATEGORY":
                tests.append(_CATEGORIES.get(str(a), lambda c: True))
        return frozenset(c for c in _SAMPLE if any(t(c) for t in tests) != negate)
    return None


def _repeated_chars(items: Any) -> frozenset[str]:
    """What the unbounded repeats in `items` can consume (every sample character when unsure)."""
    out: set[str] = set()
    for op, arg in items:
        name = str(op)
        if name in ("MAX_REPEAT", "MIN_REPEAT"):
            _low, high, sub = arg
            if high == _UNBOUNDED or high > 1000:
                for o, a in sub:
                    chars = _chars(str(o), a)
                    out |= chars if chars is not None else set(_SAMPLE)
            else:
                out |= _repeated_chars(sub)
        elif name == "SUBPATTERN":
            out |= _repeated_chars(arg[-1])
        elif name == "BRANCH":
            for branch in arg[1]:
                out |= _repeated_chars(branch)
    return frozenset(out)


def _delimiters(items: Any) -> list[frozenset[str]]:
    """Character sets every match of `items` must contain (its mandatory single characters)."""
    out = []
    for op, arg in items:
        name = str(op)
        chars = _chars(name, arg)
        if chars is not None:
            out.append(chars)
        elif name == "SUBPATTERN":
            out += _delimiters(arg[-1])
        elif name in ("MAX_REPEAT", "MIN_REPEAT") and arg[0] >= 1:
            out += _delimiters(arg[2])
    return out


def backtracking_risk(pattern: str) -> str | None:
    r"""Why `pattern` can take exponential time on a crafted string, or None.

    Python's `re` has no time limit, and a link pattern runs on every link a site shows. The shape
    behind catastrophic backtracking is an unbounded repeat inside another whose iterations can
    split a string in many ways: (a+)+, (\w+\s?)*, (.*x)*. A repeat whose every iteration holds a
    character the inner repeat cannot match ((?:/\d+)+: the "/") splits one way only and is fine.
    Risky patterns are refused at load, naming the key.
    """
    from re import _parser  # type: ignore[attr-defined]

    def walk(items: Any) -> str | None:
        for op, arg in items:
            name = str(op)
            if name in ("MAX_REPEAT", "MIN_REPEAT"):
                _low, high, sub = arg
                if high == _UNBOUNDED or high > 1000:
                    inner = _repeated_chars(sub)
                    if inner and not any(d.isdisjoint(inner) for d in _delimiters(sub)):
                        return "repeats a group that itself repeats without a delimiter"
                found = walk(sub)
            elif name == "SUBPATTERN":
                found = walk(arg[-1])
            elif name == "BRANCH":
                found = next((r for b in arg[1] if (r := walk(b))), None)
            elif name in ("ASSERT", "ASSERT_NOT"):
                found = walk(arg[1])
            else:
                found = None  # atomic groups and possessive repeats never backtrack
            if found:
                return found
        return None

    try:
        return walk(_parser.parse(pattern))
    except (re.error, RecursionError):
        return "is too deeply nested"


def _construct(node: yaml.ScalarNode) -> Any:
    """Build the Python value of one scalar node with YAML's safe rules (so `1.0`, `true`, `null` work)."""
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()
