"""Load and validate the YAML configuration (see CONTRACT.md, "Configuration").

Validation happens once, at load: every problem is a `ConfigError` that names the key and the
line, so an operator can fix the file without reading a traceback.

The shape, types, ranges and defaults are declared once, as pydantic models
(`policywatch.config_models`, also the source of config/sources.schema.json); this module reads
the YAML into a node tree (which knows each key's line), validates the plain values with the
models, maps an error's location back to its node, and builds the runtime objects below (whose
defaults are the models').

(About 690 lines: the node walk that keeps each key's line, the error mapping and the runtime objects
belong together; the declarations themselves are config_models.py.)
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from policywatch.config_models import (
    EVENT_KINDS,
    FETCHERS,
    LISTING_KINDS,
    PAGE_PLACEHOLDER,
    SOURCE_ID_RE,
    SUBSCRIBABLE_EVENTS,
    ConfigModel,
    ListingModel,
    PaginationModel,
    RecheckModel,
    RelevanceModel,
    SettingsModel,
    SourceModel,
    SubscriberModel,
    backtracking_risk,
    default,
)
from policywatch.relevance import DEFAULT_CLASSIFIER, RelevanceClassifier
from policywatch.schedule import RecheckPolicy

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "config" / "sources.yaml"

__all__ = [
    "EVENT_KINDS",
    "FETCHERS",
    "LISTING_KINDS",
    "PAGE_PLACEHOLDER",
    "SOURCE_ID_RE",
    "SUBSCRIBABLE_EVENTS",
    "BrokenSource",
    "Config",
    "ConfigError",
    "ListingConfig",
    "Pagination",
    "RecheckConfig",
    "Settings",
    "SourceConfig",
    "SubscriberConfig",
    "backtracking_risk",
    "load_config",
    "parse_config",
    "resolve_config_path",
]


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


_SETTINGS = SettingsModel()  # the defaults


@dataclass(frozen=True)
class Pagination:
    """Further pages of a listing: `template` with "{n}" replaced by first, first+1, …"""

    template: str
    first: int = default(PaginationModel, "first")  # {n} on the second page (index_1.html: 1)
    max_pages: int = _SETTINGS.max_pages  # pages read per cycle, the first one included

    def urls(self, first_url: str) -> list[str]:
        more = [
            self.template.replace(PAGE_PLACEHOLDER, str(self.first + i)) for i in range(self.max_pages - 1)
        ]
        return [first_url, *more]


@dataclass(frozen=True)
class ListingConfig:
    """One listing of a source: an HTML page of links, a JSON document of items, or an RSS/Atom feed."""

    url: str
    kind: str = default(ListingModel, "kind")  # html | json | rss | hanweb
    link_pattern: re.Pattern[str] | None = None  # html: required (else the source's); json/rss: a filter
    items: str = default(ListingModel, "items")  # json: dotted path to the list of items ("": the document)
    url_field: tuple[str, ...] = default(ListingModel, "url_field")  # json: the first present wins
    title_field: tuple[str, ...] = default(ListingModel, "title_field")
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
    min_delay_s: float = _SETTINGS.min_delay_s
    # Extensions beyond the contract.
    encoding: str | None = None  # override a site's wrong or missing charset
    max_documents: int | None = None  # cap on documents fetched per cycle
    concurrency: int = _SETTINGS.concurrency  # parallel fetches (politeness still applies per host)
    schedule: str = default(SourceModel, "schedule")
    allow_private: bool | None = None  # None: decided from the configured URLs
    listings: tuple[ListingConfig, ...] = ()  # JSON / RSS / paginated listings (listing_urls: plain HTML)
    preset: str | None = None  # extraction preset (extraction.presets); sets content_selector
    recheck: RecheckConfig = field(default_factory=RecheckConfig)  # settings' recheck: under its own
    # The hosts the documents are fetched from, when not those of the configured URLs (a listing on
    # a search API, documents on www.gov.cn): Airflow's pools and the host budgets are per host.
    document_hosts: tuple[str, ...] = ()
    # CONTRACT.md: how pages are loaded (http: requests; browser: headless Chromium, scripts run),
    # and whether files linked from a document's body are watched as documents of their own.
    fetcher: str = default(SourceModel, "fetcher")
    attachments: bool = default(SourceModel, "attachments")

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
    sources: tuple[str, ...] = default(SubscriberModel, "sources")
    keywords: tuple[str, ...] = ()
    events: tuple[str, ...] = default(SubscriberModel, "events")
    digest: bool = default(SubscriberModel, "digest")
    # 发文字号 or titles: only events of documents that cite, implement, amend or repeal one of them.
    follows: tuple[str, ...] = ()


@dataclass(frozen=True)
class Settings:
    """`settings:`; the meaning and the range of each key: `policywatch.config_models.SettingsModel`."""

    first_run_alerts: bool = _SETTINGS.first_run_alerts
    user_agent: str | None = _SETTINGS.user_agent
    max_body_bytes: int = _SETTINGS.max_body_bytes
    connect_timeout_s: float = _SETTINGS.connect_timeout_s
    read_timeout_s: float = _SETTINGS.read_timeout_s
    max_attempts: int = _SETTINGS.max_attempts
    backoff_base_s: float = _SETTINGS.backoff_base_s
    respect_robots: bool = _SETTINGS.respect_robots
    # Politeness defaults for sources that set none.
    min_delay_s: float = _SETTINGS.min_delay_s
    concurrency: int = _SETTINGS.concurrency
    max_pages: int = _SETTINGS.max_pages  # pages of a paginated listing read per cycle
    # Processes that read pages of a source with no politeness delay (min_delay_s 0): parsing is
    # CPU-bound, one Python process uses one core. None: one per core. Airflow tasks use one each.
    processes: int | None = _SETTINGS.processes
    # Airflow's execution_timeout for the pipeline's tasks: a backstop, under the hourly schedule,
    # for whatever the per-request deadlines do not bound (a task past it is failed and retried).
    task_timeout_s: float = _SETTINGS.task_timeout_s
    # Airflow's first retry of a failed task waits this long (then twice as long each time, at most
    # 30 minutes): a batch whose worker died is re-run soon, on another worker.
    task_retry_delay_s: float = _SETTINGS.task_retry_delay_s
    # A source's Airflow run still going this many schedule intervals after it was queued mails the
    # operators once (policywatch.overdue, an Airflow Deadline Alert); 0: no deadline.
    overdue_after_intervals: float = _SETTINGS.overdue_after_intervals
    recheck: RecheckConfig = field(default_factory=RecheckConfig)
    # Failing cycles in a row that make a source degraded (policywatch.health).
    degraded_after: int = _SETTINGS.degraded_after
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


def _source_id_of(node: yaml.Node) -> str | None:
    """The id of a source entry, if it has a valid one (to name the broken source's DAG)."""
    if not isinstance(node, yaml.MappingNode):
        return None
    for key_node, value_node in node.value:
        if key_node.value == "id" and isinstance(value_node, yaml.ScalarNode):
            value = str(value_node.value)
            return value if SOURCE_ID_RE.match(value) else None
    return None


# --- the YAML node tree: plain values for the models, and the line of every key -----------------

Loc = Sequence[str | int]
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"


class _Refused:
    """A value the YAML may not hold (a duplicate key, a tag such as !!python/object): it fails any
    model type, and the error says why instead of the type's words."""

    def __init__(self, message: str, node: yaml.Node):
        self.message = message
        self.node = node

    def __repr__(self) -> str:
        return f"<{self.message}>"


def _plain(node: yaml.Node, seen: dict[int, Any] | None = None) -> Any:
    """The Python value of a node with YAML's safe rules (so `1.0`, `true`, `null` work).

    A node an alias repeats is converted once (`seen`), so that a "billion laughs" file costs what
    it is long, not what it would expand to (the models never descend into it more than a level).
    """
    seen = {} if seen is None else seen
    if id(node) in seen:
        return seen[id(node)]
    if isinstance(node, yaml.ScalarNode):
        try:
            value: Any = _construct(node)
        except yaml.YAMLError as exc:  # a tag the safe loader refuses (!!python/object...)
            value = _Refused(f"unsupported value: {getattr(exc, 'problem', exc)}", node)
        seen[id(node)] = value
    elif isinstance(node, yaml.SequenceNode) and node.tag == _SEQ_TAG:
        seen[id(node)] = value = []
        value.extend(_plain(item, seen) for item in node.value)
    elif isinstance(node, yaml.MappingNode) and node.tag == _MAP_TAG:
        seen[id(node)] = value = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                return _Refused("a key must be a single value", key_node)
            name = str(key_node.value)
            value[name] = _Refused("duplicate key", key_node) if name in value else _plain(value_node, seen)
    else:
        value = _Refused(f"unsupported value: the tag {node.tag!r}", node)
    return value


def _construct(node: yaml.ScalarNode) -> Any:
    """Build the Python value of one scalar node with YAML's safe rules."""
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def _dotted(loc: Loc) -> str:
    """("sources", 0, "id") -> "sources[0].id"."""
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else f".{part}" if key else str(part)
    return key


def _find(root: yaml.Node, loc: Loc) -> tuple[yaml.Node | None, yaml.Node, int]:
    """The key node and the value node at `loc`, or those of the nearest enclosing key that exists
    (a missing key: its mapping), and how many parts of `loc` were found."""
    key_node: yaml.Node | None = None
    node = root
    depth = 0
    for part in loc:
        found = None
        if isinstance(part, int) and isinstance(node, yaml.SequenceNode) and 0 <= part < len(node.value):
            found = (None, node.value[part])
        elif isinstance(part, str) and isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in reversed(node.value) if k.value == part), None)
        if found is None:
            break
        key_node, node = found
        depth += 1
    return key_node, node, depth


def _known_keys(loc: Loc) -> list[str]:
    """The keys the model at `loc` knows (for an "unknown key" error)."""
    model: Any = ConfigModel
    for part in loc:
        if isinstance(part, int):
            continue
        field_info = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
        if field_info is None:
            return []
        model = _model_in(field_info.annotation)
        if model is None:
            return []
    return sorted(f.alias or n for n, f in model.model_fields.items())


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        if (model := _model_in(arg)) is not None:
            return model
    return None


_SCALAR_TYPES = ("string_type", "int_type", "float_type", "bool_type", "literal_error")
_NOUNS = {"kind": "listing kind", "events": "event"}


def _message(error: ErrorDetails) -> str:
    """Pydantic's error in the configuration's words."""
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "extra_forbidden":
        return f"unknown key (known keys: {', '.join(_known_keys(error['loc'][:-1]))})"
    if isinstance(value, _Refused):
        return value.message
    if kind == "missing":
        return f"missing required key {error['loc'][-1]!r}"
    if kind == "config":
        return str(ctx["message"])
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", error["msg"]))
    if kind in _SCALAR_TYPES and isinstance(value, list | dict):
        return "must be a single value"
    if kind == "too_short" and error["loc"] == ("sources",):
        return "at least one source is needed"
    words = {
        "bool_type": "must be true or false",
        "int_type": "must be a whole number",
        "int_from_float": "must be a whole number",
        "float_type": "must be a number",
        "string_type": "must be a non-empty string",
        "string_too_short": "must be a non-empty string",
        "string_pattern_mismatch": "must be a non-empty string",
        "list_type": "must be a list",
        "dict_type": "must be a mapping",
        "model_type": "must be a mapping",
        "model_attributes_type": "must be a mapping",
        "too_short": "must not be empty",
    }
    if kind in words:
        return words[kind]
    if kind == "greater_than_equal":
        return f"must be a number >= {ctx['ge']:g}"
    if kind == "less_than_equal":
        return f"must be a number <= {ctx['le']:g}"
    if kind == "literal_error":
        name = next((p for p in reversed(error["loc"]) if isinstance(p, str)), "")
        allowed = ", ".join(re.findall(r"'([^']*)'", str(ctx["expected"])))
        return f"unknown {_NOUNS.get(name, name)} {value!r} (one of {allowed})"
    return str(error["msg"])


class _Document:
    """One configuration file: its node tree, and errors placed on it."""

    def __init__(self, root: yaml.Node, path: str | None):
        self.root = root
        self.path = path

    def fail(self, message: str, loc: Loc, *, at_key: bool = False, on_mapping: bool = False) -> ConfigError:
        key_node, node, depth = _find(self.root, loc[:-1] if on_mapping else loc)
        if isinstance(node, yaml.ScalarNode) and all(isinstance(p, int) for p in loc[depth:]):
            loc = loc[:depth]  # a single value where a list may be (url_field: url): no [0]
        where = key_node if at_key and key_node is not None else node
        return ConfigError(message, key=_dotted(loc), line=where.start_mark.line + 1, path=self.path)

    def error(self, error: ErrorDetails, prefix: Loc = ()) -> ConfigError:
        loc = (*prefix, *error["loc"], *(error.get("ctx") or {}).get("loc", ()))
        value = error.get("input")
        if isinstance(value, _Refused) and error["type"] != "extra_forbidden":
            line = value.node.start_mark.line + 1
            return ConfigError(value.message, key=_dotted(loc), line=line, path=self.path)
        on_mapping = bool((error.get("ctx") or {}).get("on_mapping"))
        return self.fail(
            _message(error), loc, at_key=error["type"] == "extra_forbidden", on_mapping=on_mapping
        )

    def validate(self, model: type[Any], data: Any, prefix: Loc = (), **context: Any) -> Any:
        """`data` validated by `model`; else the error nearest the top of the file, as a ConfigError."""
        try:
            return model.model_validate(data, context=context)
        except ValidationError as exc:
            errors = [self.error(e, prefix) for e in exc.errors(include_url=False)]
            raise min(errors, key=lambda e: e.line or 0) from None


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
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(f"not valid YAML: {getattr(exc, 'problem', exc)}", line=line, path=path) from exc
    if root is None:
        raise ConfigError("the configuration is empty", key="sources", path=path)
    doc = _Document(root, path)
    try:
        data = _plain(root)
    except RecursionError:
        raise ConfigError("nested too deeply", path=path) from None
    if not lenient:
        model: ConfigModel = doc.validate(ConfigModel, data)
        settings = _settings(model.settings)
        sources = [_source(m, settings) for m in model.sources]
        entries = list(enumerate(sources))
        for i, source in entries:
            _check_source(doc, i, source, model.sources[i], settings)
        return _config(doc, model, settings, sources, broken=[])
    # Lenient: the file's frame first (settings, subscribers' shape), then each source on its own.
    model = doc.validate(ConfigModel, data, sources_one_by_one=True)
    settings = _settings(model.settings)
    good: list[SourceConfig] = []
    broken: list[BrokenSource] = []
    for i, item in enumerate(data["sources"]):
        try:
            entry: SourceModel = doc.validate(SourceModel, item, ("sources", i))
            source = _source(entry, settings)
            _check_source(doc, i, source, entry, settings, seen={s.id for s in good})
        except ConfigError as error:
            items = _find(root, ("sources", i))[1]
            broken.append(BrokenSource(index=i, id=_source_id_of(items), error=error))
            continue
        good.append(source)
    return _config(doc, model, settings, good, broken=broken)


# --- the runtime objects, from the validated models ----------------------------------------------


def _recheck(model: RecheckModel) -> RecheckConfig:
    return RecheckConfig(**model.model_dump())


def _relevance(model: RelevanceModel, given: bool) -> RelevanceClassifier:
    if not given:
        return DEFAULT_CLASSIFIER
    options = model.model_dump(exclude={"terms", "extra_terms"})
    return RelevanceClassifier.from_weights(model.terms, extra=model.extra_terms, **options)


def _settings(model: SettingsModel) -> Settings:
    values = model.model_dump(exclude={"recheck", "relevance"})
    return Settings(
        **values,
        recheck=_recheck(model.recheck),
        relevance=_relevance(model.relevance, "relevance" in model.model_fields_set),
    )


def _pattern(raw: str | None) -> re.Pattern[str] | None:
    return re.compile(raw) if raw is not None else None


def _listing(
    model: ListingModel, source_pattern: re.Pattern[str] | None, settings: Settings
) -> ListingConfig:
    pages = None
    if model.pages is not None:
        max_pages = model.pages.max_pages if model.pages.max_pages is not None else settings.max_pages
        if model.kind == "hanweb":
            pages = Pagination(template="", first=0, max_pages=max_pages)
        else:
            pages = Pagination(template=model.pages.template, first=model.pages.first, max_pages=max_pages)
    return ListingConfig(
        url=model.url,
        kind=model.kind,
        link_pattern=_pattern(model.link_pattern) or source_pattern,
        items=model.items or "",
        url_field=tuple(model.url_field),
        title_field=tuple(model.title_field),
        date_field=tuple(model.date_field or ()),
        html_field=model.html_field,
        pages=pages,
    )


def _source(model: SourceModel, settings: Settings) -> SourceConfig:
    pattern = _pattern(model.link_pattern)
    selector = model.content_selector
    if selector is None and model.preset is not None:
        # An explicit content_selector wins; otherwise the preset's body containers.
        from policywatch.extraction.presets import preset_selector

        selector = preset_selector(model.preset)
    given = model.model_fields_set
    recheck = settings.recheck
    if "recheck" in given:
        recheck = _recheck(model.recheck).over(settings.recheck)
    return SourceConfig(
        id=model.id,
        name=model.name,
        listing_urls=tuple(model.listing_urls),
        link_pattern=pattern,
        pages=tuple(model.pages),
        content_selector=selector,
        min_delay_s=model.min_delay_s if "min_delay_s" in given else settings.min_delay_s,
        encoding=model.encoding,
        max_documents=model.max_documents,
        concurrency=model.concurrency if "concurrency" in given else settings.concurrency,
        schedule=model.schedule,
        allow_private=model.allow_private,
        listings=tuple(_listing(m, pattern, settings) for m in model.listings),
        preset=model.preset,
        recheck=recheck,
        document_hosts=tuple(model.document_hosts),
        fetcher=model.fetcher,
        attachments=model.attachments,
    )


def _check_source(
    doc: _Document,
    i: int,
    source: SourceConfig,
    model: SourceModel,
    settings: Settings,
    seen: set[str] | None = None,
) -> None:
    """What the models cannot see alone: the re-check policy under the settings', a duplicate id."""
    given = model.model_fields_set
    try:
        source.recheck.policy(source.schedule)
    except ValueError as exc:
        where = "recheck" if "recheck" in given else "schedule" if "schedule" in given else "id"
        raise doc.fail(f"{exc} (schedule {source.schedule!r})", ("sources", i, where)) from exc
    if seen is not None and source.id in seen:
        raise doc.fail(f"duplicate source id {source.id!r}", ("sources", i, "id"))


def _config(
    doc: _Document,
    model: ConfigModel,
    settings: Settings,
    sources: list[SourceConfig],
    broken: list[BrokenSource],
) -> Config:
    if not broken:
        seen: set[str] = set()
        for i, source in enumerate(sources):
            if source.id in seen:
                raise doc.fail(f"duplicate source id {source.id!r}", ("sources", i, "id"))
            seen.add(source.id)
    # A subscriber may name a broken source: it is still that source's id.
    named = {s.id for s in sources} | {b.id for b in broken if b.id}
    subscribers = []
    for n, sub in enumerate(model.subscribers):
        for k, source_id in enumerate(sub.sources):
            if source_id != "*" and source_id not in named:
                raise doc.fail(f"unknown source id {source_id!r}", ("subscribers", n, "sources", k))
        subscribers.append(
            SubscriberConfig(
                email=sub.email,
                sources=tuple(sub.sources),
                keywords=tuple(sub.keywords),
                events=tuple(sub.events),
                digest=sub.digest,
                follows=tuple(sub.follows),
            )
        )
    return Config(
        sources=tuple(sources),
        subscribers=tuple(subscribers),
        settings=settings,
        path=doc.path,
        broken=tuple(broken),
    )
