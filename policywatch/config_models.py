"""The configuration's shape, types, ranges and defaults, declared once (pydantic models).

`policywatch.config` validates a file with these models (and maps each error back to the YAML
key and line); `policywatch.config_schema` writes them out as the JSON Schema editors use
(config/sources.schema.json). The runtime objects (`policywatch.config.Settings`, `SourceConfig`…)
are built from the validated models and take their defaults from here.

Every model refuses unknown keys (extra="forbid") and is strict: "3" is not a number and 1 is not
`true`, as YAML's own types say. A key that may be left out but not set to null is declared with
`absent()`: its runtime value is then None, or the settings' value (`inherited()`).

(About 600 lines: one model per section of the file, each key with its type, range, default and the
description the JSON Schema shows; splitting the sections apart would not make one easier to read.)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from policywatch.relevance import (
    DEFAULT_CORE_WEIGHT,
    DEFAULT_MAX_COUNT,
    DEFAULT_THRESHOLD,
    DEFAULT_TITLE_FACTOR,
)
from policywatch.schedule import schedule_interval_s

SOURCE_ID_RE = re.compile(r"[a-z0-9-]+\Z")  # \Z: "$" would let a trailing newline through
EventKind = Literal["new", "changed", "removed", "restored", "republished"]
# What a subscriber can ask for: the change events, and `important` (an analyst marked a change so).
SubscribableEvent = Literal["new", "changed", "removed", "restored", "republished", "important"]
ListingKind = Literal["html", "json", "rss", "hanweb"]
Fetcher = Literal["http", "browser"]
EVENT_KINDS: tuple[str, ...] = get_args(EventKind)
SUBSCRIBABLE_EVENTS: tuple[str, ...] = get_args(SubscribableEvent)
LISTING_KINDS: tuple[str, ...] = get_args(ListingKind)
FETCHERS: tuple[str, ...] = get_args(Fetcher)
PAGE_PLACEHOLDER = "{n}"
HOST_RE = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]{1,5})?")


def config_error(message: str, *loc: str | int, on_mapping: bool = False) -> PydanticCustomError:
    """An error of a model-wide check, reported at `loc` under the model (a key it names); on the
    line of the model's mapping with `on_mapping` (what is wrong is the entry as a whole)."""
    return PydanticCustomError(
        "config", "{message}", {"message": message, "loc": loc, "on_mapping": on_mapping}
    )


def absent(default: Any = None, **kwargs: Any) -> Any:
    """A key that may be left out (then `default`, None: decided at runtime) but not set to null."""
    return Field(default, json_schema_extra=_without_default, **kwargs)


def _without_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def inherited(setting: str, **kwargs: Any) -> Any:
    """A source or listing key whose default is the setting of the same meaning."""
    return absent(description=f"Default: settings.{setting}.", **kwargs)


def _none_is_empty(value: Any) -> Any:
    return [] if value is None else value


def _one_or_more(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


# --- checks of one value (a ValueError's message is the error the operator reads) ---------------


def check_text(value: str) -> str:
    if not value.strip():
        raise ValueError("must be a non-empty string")
    return value


def check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {value!r}")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {value!r} ({exc})") from exc
    return value


def check_source_id(value: str) -> str:
    if not SOURCE_ID_RE.match(value):
        raise ValueError(f"{value!r} must match [a-z0-9-]+")
    return value


def check_pattern(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"bad regex {value!r}: {exc}") from exc
    risk = backtracking_risk(value)
    if risk:
        raise ValueError(f"regex {value!r} {risk}: it could hang a cycle on a hostile link")
    return value


def check_selector(value: str) -> str:
    import soupsieve

    try:
        soupsieve.compile(value)
    except Exception as exc:  # soupsieve raises SelectorSyntaxError, a SyntaxError subclass
        raise ValueError(f"bad CSS selector {value!r}: {exc}") from exc
    return value


def check_encoding(value: str) -> str:
    from crawlers.encoding import web_codec

    # The web's encodings only (WHATWG labels): a Python-only codec (rot13, idna, undefined...)
    # would make every page of the source undecodable.
    if web_codec(value) is None:
        raise ValueError(
            f"unknown encoding {value!r} (a web encoding label such as gb18030, gbk, utf-8, big5)"
        )
    return value


def check_preset(value: str) -> str:
    from policywatch.extraction.presets import PRESETS

    if value not in PRESETS:
        raise ValueError(f"unknown preset {value!r} (known: {', '.join(sorted(PRESETS))})")
    return value


def check_schedule(value: str) -> str:
    schedule_interval_s(value)  # croniter: a ValueError names what is wrong
    return value


def check_email(value: str) -> str:
    if not re.fullmatch(r"[^@\s]+@[^@\s]+", value) or "\r" in value or "\n" in value:
        raise ValueError(f"not an e-mail address: {value!r}")
    return value


def normal_host(value: str) -> str:
    host = value.strip().lower().rstrip(".")
    if not HOST_RE.fullmatch(host):
        raise ValueError(f"not a host name: {host!r} (e.g. www.gov.cn)")
    return host.split(":", 1)[0]


def check_follow(value: str) -> str:
    value = value.strip()
    if not value.strip('《》"“” '):
        raise ValueError("empty: a 发文字号 or a title")
    return value


# --- the value types ----------------------------------------------------------------------------

Text = Annotated[str, StringConstraints(min_length=1, pattern=r"\S"), AfterValidator(check_text)]
Url = Annotated[
    Text,
    AfterValidator(check_url),
    Field(json_schema_extra={"format": "uri", "pattern": "^https?://"}),
]
SourceId = Annotated[
    Text,
    AfterValidator(check_source_id),
    Field(json_schema_extra={"pattern": "^[a-z0-9-]+$"}),
]
LinkPattern = Annotated[
    Text,
    AfterValidator(check_pattern),
    Field(
        json_schema_extra={"format": "regex"},
        description="A Python regular expression searched in each link's absolute URL "
        "(patterns that could backtrack catastrophically are refused).",
    ),
]
Selector = Annotated[Text, AfterValidator(check_selector)]
Encoding = Annotated[Text, AfterValidator(check_encoding)]
Preset = Annotated[Text, AfterValidator(check_preset)]
Schedule = Annotated[Text, AfterValidator(check_schedule)]
Email = Annotated[Text, AfterValidator(check_email)]
Host = Annotated[Text, AfterValidator(normal_host)]
Follow = Annotated[Text, AfterValidator(check_follow)]
# A dotted path in a JSON item, or a list of them (the first one present wins).
FieldPaths = Annotated[
    list[Text],
    BeforeValidator(_one_or_more, json_schema_input_type=Text | list[Text]),
    Field(min_length=1),
]
Weight = Annotated[float, Field(ge=0)]
Seconds = Annotated[float, Field(ge=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# Lists may also be written as null (nothing). Each is spelled out for the JSON Schema's sake.
Urls = Annotated[list[Url], BeforeValidator(_none_is_empty, json_schema_input_type=list[Url] | None)]
Hosts = Annotated[list[Host], BeforeValidator(_none_is_empty, json_schema_input_type=list[Host] | None)]
Texts = Annotated[list[Text], BeforeValidator(_none_is_empty, json_schema_input_type=list[Text] | None)]
Follows = Annotated[list[Follow], BeforeValidator(_none_is_empty, json_schema_input_type=list[Follow] | None)]
Events = Annotated[
    list[SubscribableEvent],
    BeforeValidator(_none_is_empty, json_schema_input_type=list[SubscribableEvent] | None),
]


class RecheckModel(_Model):
    """`recheck:` of `settings` (every source's defaults) or of a source (overrides, key by key).

    Left out: derived (policywatch.schedule): the minimum interval is the source's schedule
    interval, the maximum 7 days, the budget what the politeness delay lets one host answer in 80%
    of a cycle.
    """

    min_interval_s: Seconds = absent(description="Never re-check a document sooner than this.")
    max_interval_s: Seconds = absent(description="Never wait longer than this, however dormant the page.")
    fresh_age_s: Seconds = absent(description="Documents younger than this are re-checked every cycle.")
    request_cost_s: Seconds = absent(description="The detection delay one request is worth.")
    budget: int = absent(ge=1, description="Requests to one host per cycle (listing pages included).")
    budget_fraction: float = absent(
        ge=0.01, le=1, description="The share of a cycle's interval the budget may fill, in (0, 1]."
    )
    early: bool = absent(
        description="Spend what the budget leaves after the due documents on those due soonest "
        "(default: yes). Off: only due documents are re-checked."
    )

    @model_validator(mode="after")
    def _interval_order(self) -> RecheckModel:
        low, high = self.min_interval_s, self.max_interval_s
        if low is not None and high is not None and low > high:
            raise config_error("min_interval_s must not exceed max_interval_s", "min_interval_s")
        return self


Weights = Annotated[dict[Text, Weight], Field(description="term: weight (a number >= 0; 0 removes a term)")]


class RelevanceModel(_Model):
    """`settings.relevance`: which documents are relevant (policywatch.relevance)."""

    threshold: Weight = DEFAULT_THRESHOLD
    title_factor: Weight = DEFAULT_TITLE_FACTOR
    max_count: int = Field(default=DEFAULT_MAX_COUNT, ge=1)
    core_weight: Weight = DEFAULT_CORE_WEIGHT
    terms: Weights = absent(description="Replaces the built-in terms (policywatch/relevance.py).")
    extra_terms: Weights = absent(description="Added to the built-in terms; a weight of 0 removes a term.")

    @field_validator("terms")
    @classmethod
    def _some_weight(cls, terms: dict[str, float]) -> dict[str, float]:
        if not any(w > 0 for w in terms.values()):
            raise ValueError("at least one term needs a weight above 0")
        return terms


class SettingsModel(_Model):
    first_run_alerts: bool = False
    user_agent: Text = absent()
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    connect_timeout_s: float = Field(default=5.0, ge=0.01)
    read_timeout_s: float = Field(default=20.0, ge=0.01)
    max_attempts: int = Field(default=3, ge=1)
    backoff_base_s: float = Field(default=1.0, ge=0)
    respect_robots: bool = True
    min_delay_s: float = Field(
        default=1.0, ge=0, description="Politeness: seconds between requests to a host."
    )
    concurrency: int = Field(default=4, ge=1, description="Parallel fetches of a source.")
    max_pages: int = Field(default=3, ge=1, description="Pages of a paginated listing read per cycle.")
    processes: int = absent(
        ge=1,
        description="Processes that read pages of a source with no politeness delay (default: one per core).",
    )
    task_timeout_s: float = Field(
        default=55 * 60,
        ge=60,
        description="Airflow's execution_timeout for the pipeline's tasks: a backstop.",
    )
    task_retry_delay_s: float = Field(
        default=60.0,
        ge=1,
        description="Airflow's first retry of a failed task waits this long (then doubling).",
    )
    overdue_after_intervals: float = Field(
        default=3.0,
        ge=0,
        description="A source's run still going this many schedule intervals after it was queued "
        "mails the operators once; 0: no deadline.",
    )
    recheck: RecheckModel = Field(default=RecheckModel(), json_schema_extra=_without_default)
    degraded_after: int = Field(
        default=2, ge=1, description="Failing cycles in a row that make a source degraded."
    )
    relevance: RelevanceModel = Field(default=RelevanceModel(), json_schema_extra=_without_default)


class PaginationModel(_Model):
    """Further pages of a listing: `template` with "{n}" replaced by first, first+1, …
    (a hanweb listing takes `max` only)."""

    template: Text = absent(description='The URL of further pages, "{n}" where the page number goes.')
    first: int = Field(default=2, ge=0, description="The value of {n} on the second page.")
    max_pages: int = inherited("max_pages", alias="max", ge=1)

    @field_validator("template")
    @classmethod
    def _template(cls, template: str) -> str:
        if PAGE_PLACEHOLDER not in template:
            raise ValueError(f"the template needs a {PAGE_PLACEHOLDER} where the page number goes")
        check_url(template.replace(PAGE_PLACEHOLDER, "2"))  # the URL it makes
        return template


JSON_ONLY = ("items", "url_field", "title_field", "date_field", "html_field")


class ListingModel(_Model):
    """One listing of a source: an HTML page of links, a JSON document of items, an RSS/Atom feed,
    or a Hanweb dataproxy.jsp list."""

    url: Url
    kind: ListingKind = "html"
    link_pattern: LinkPattern | None = Field(
        default=None, description="html: required (else the source's); json/rss: a filter."
    )
    items: str | None = Field(
        default="", description='json: dotted path to the list of items ("": the document).'
    )
    url_field: FieldPaths = Field(
        default=["url"], description="json: dotted paths in an item, the first present wins."
    )
    title_field: FieldPaths = ["title"]
    date_field: FieldPaths = absent(description="json: dotted paths to an item's date.")
    html_field: Text = absent(description="json: dotted path to an HTML fragment whose links are the items.")
    pages: PaginationModel = absent()

    @model_validator(mode="after")
    def _kind_keys(self) -> ListingModel:
        given = self.model_fields_set
        if self.kind != "json":
            for name in JSON_ONLY:
                if name in given:
                    raise config_error(f"only a json listing has {name}", name)
        elif "html_field" in given:
            for name in ("items", "url_field", "title_field"):
                if name in given:
                    raise config_error("html_field replaces items, url_field and title_field", "html_field")
        if self.pages is not None:
            pages = self.pages.model_fields_set
            if self.kind == "hanweb":
                # A Hanweb dataproxy.jsp list pages by its startrecord/endrecord window: only how many.
                for name in ("template", "first"):
                    if name in pages:
                        raise config_error("unknown key (known keys: max)", "pages", name)
            elif "template" not in pages:
                raise config_error("missing required key 'template'", "pages", "template")
        return self


Listings = Annotated[
    list[ListingModel], BeforeValidator(_none_is_empty, json_schema_input_type=list[ListingModel] | None)
]


class SourceModel(_Model):
    id: SourceId
    name: Text
    listing_urls: Urls = Field(default=[], description="Plain HTML listings (they need link_pattern).")
    link_pattern: LinkPattern | None = None
    pages: Urls = Field(default=[], description="Single pages watched as documents.")
    content_selector: Selector | None = Field(
        default=None, description="CSS selector of the body (else a preset's)."
    )
    min_delay_s: float = inherited("min_delay_s", ge=0)
    encoding: Encoding | None = Field(
        default=None, description="Overrides a site's wrong or missing charset."
    )
    max_documents: int | None = Field(default=None, ge=1, description="Cap on documents fetched per cycle.")
    concurrency: int = inherited("concurrency", ge=1)
    schedule: Schedule = Field(
        default="@hourly", description="A cron expression or preset (@hourly, @daily…)."
    )
    allow_private: bool = absent(description="Default: decided from the configured URLs.")
    listings: Listings = []
    preset: Preset | None = Field(default=None, description="Extraction preset (extraction.presets).")
    recheck: RecheckModel = Field(
        default=RecheckModel(),
        description="Overrides settings.recheck key by key.",
        json_schema_extra=_without_default,
    )
    document_hosts: Hosts = Field(
        default=[],
        description="The hosts the documents are fetched from, when not those of the configured URLs.",
    )
    fetcher: Fetcher = Field(default="http", description="http: requests; browser: headless Chromium.")
    attachments: bool = Field(
        default=True, description="Watch files linked from a document's body as documents."
    )

    @model_validator(mode="after")
    def _something_to_watch(self) -> SourceModel:
        if self.listing_urls and self.link_pattern is None:
            raise config_error("listing_urls need a link_pattern", "link_pattern", on_mapping=True)
        if not self.listing_urls and not self.listings and not self.pages:
            raise config_error(
                "a source needs listing_urls, listings or pages", "listing_urls", on_mapping=True
            )
        for i, listing in enumerate(self.listings):
            pattern = listing.link_pattern or self.link_pattern
            if pattern is None and (listing.kind == "html" or listing.html_field is not None):
                raise config_error(
                    "an HTML listing needs a link_pattern (here or on the source)",
                    "listings",
                    i,
                    "link_pattern",
                )
        return self


class SubscriberModel(_Model):
    email: Email
    sources: Texts = Field(default=["*"], description='Source ids, or "*" for every source.')
    keywords: Texts = []
    events: Events = ["new", "changed", "removed"]
    digest: bool = False
    follows: Follows = Field(
        default=[],
        description="发文字号 or titles: only events of documents that cite, implement, amend or repeal one.",
    )


class ConfigModel(_Model):
    """The PolicyWatch configuration (config/sources.yaml; CONTRACT.md, "Configuration")."""

    model_config = ConfigDict(title="PolicyWatch configuration")

    sources: Annotated[
        list[SourceModel],
        BeforeValidator(_none_is_empty, json_schema_input_type=list[SourceModel]),
        Field(min_length=1),
    ]
    subscribers: Annotated[
        list[SubscriberModel],
        BeforeValidator(_none_is_empty, json_schema_input_type=list[SubscriberModel] | None),
    ] = []
    settings: SettingsModel = Field(default=SettingsModel(), json_schema_extra=_without_default)

    @field_validator("sources", mode="wrap")
    @classmethod
    def _sources_one_by_one(
        cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Any:
        """A lenient load validates each source entry on its own: here only that there are some."""
        if info.context and info.context.get("sources_one_by_one"):
            if not isinstance(value, list) or not value:
                return handler(value)
            return []
        return handler(value)


def default(model: type[BaseModel], name: str) -> Any:
    """The default of a model's field (a list as a tuple, as the runtime objects hold them)."""
    value = model.model_fields[name].get_default(call_default_factory=True)
    return tuple(value) if isinstance(value, list) else value


# --- link patterns that could hang a cycle ------------------------------------------------------

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
        tests: list[Callable[..., bool]] = []
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
