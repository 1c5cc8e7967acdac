"""crawlers: polite, bounded fetching of policy pages and link discovery on listing pages."""

from .challenge import detect_challenge
from .discover import canonical_url, discover_links
from .encoding import decode_html
from .fetch import DEFAULT_USER_AGENT, Fetcher, FetchResult, is_private_address

__all__ = [
    "DEFAULT_USER_AGENT",
    "FetchResult",
    "Fetcher",
    "canonical_url",
    "decode_html",
    "detect_challenge",
    "discover_links",
    "is_private_address",
]
