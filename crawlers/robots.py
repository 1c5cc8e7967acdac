"""robots.txt rules, read as the major crawlers read them (RFC 9309 plus `*` and `$` in paths).

The standard library's `urllib.robotparser` takes paths literally: `Disallow: /*.jsp` blocks nothing,
`Disallow: /private$` blocks every path under /private/. Protego (Scrapy's parser) implements the
wildcards, longest-match precedence between Allow and Disallow, and Crawl-delay. `RobotsRules`
keeps the two questions the fetchers ask (`can_fetch`, `crawl_delay`) in robotparser's argument
order, so callers do not depend on the parser.
"""

from __future__ import annotations

from protego import Protego


class RobotsRules:
    """The rules of one robots.txt."""

    def __init__(self, text: str) -> None:
        self._rules = Protego.parse(text)

    def can_fetch(self, user_agent: str, url: str) -> bool:
        return bool(self._rules.can_fetch(url, user_agent))

    def crawl_delay(self, user_agent: str) -> float | None:
        delay = self._rules.crawl_delay(user_agent)
        return float(delay) if delay is not None else None
