"""What a response's body is: read within bounds, then judged and decoded.

Reading (`_read_body`, `_response_body`) is where a hostile or broken server shows: bodies are
streamed and capped (the fetcher's max_bytes; a bounded prefix of error answers, enough to
recognise a challenge page; a drain of redirects and 304s so the connection goes back to the
pool), a read timeout and the request's deadline end them, and a Content-Encoding urllib3 cannot
decode is refused before a byte is read. What `mode` does not read (an image where a page was
asked for) is never downloaded. Judging (`_finish`, `_finish_feed`, `_finish_file`) turns the
bytes into the result: sniffed by magic numbers and markup (servers label types every which
way), checked for a connection that closed mid-page, decoded with WHATWG charset labels only
(crawlers.encoding, right for GBK/GB2312 pages), and refused when it is an anti-bot challenge
page (crawlers.challenge) rather than content.
"""

from __future__ import annotations

import contextlib
import re
import time
from typing import TYPE_CHECKING, Any

import requests
import urllib3.exceptions
import urllib3.response

from .challenge import detect_challenge
from .deadline import _DEADLINE_SLACK_S
from .encoding import decode_html
from .failures import _caused_by, _describe, _Failure
from .transport import _REDIRECT_STATUSES

if TYPE_CHECKING:
    from .fetch import FetchResult


# What a fetch reads: an HTML page, a listing feed, or a file of any type (an attachment).
PAGE, FEED, FILE = "page", "feed", "file"

_HTML_TYPES = {"text/html", "application/xhtml+xml", "text/plain"}
# What a listing feed (JSON, RSS, Atom) may be served as: sites label them every which way.
_FEED_TYPES = {
    "application/json",
    "text/json",
    "application/javascript",
    "text/javascript",
    "application/x-javascript",
    "application/xml",
    "text/xml",
    "application/rss+xml",
    "application/atom+xml",
    "application/rdf+xml",
    "text/html",
    "text/plain",
    "application/octet-stream",
    "",
}
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([-\w.:]+)["']""", re.I)
_SNIFF_TYPES = {"", "application/octet-stream"}
# Bodies of error answers are read only this far (enough to recognise a challenge page).
_ERROR_BODY_CAP = 512 * 1024
_DRAIN_CAP = 64 * 1024  # a redirect's or a 304's body, read only to keep the connection
_HTML_SNIFF_RE = re.compile(
    rb"^\s*<(?:!doctype\s+html|html|head|body|script|iframe|h1|div|font|table|a|style|title|b|br|p|meta|!--)[\s>/]",
    re.I,
)
_MAGIC = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"PK\x03\x04", "application/zip"),
    (b"\xd0\xcf\x11\xe0", "application/msword"),
)


def _decodable_codings() -> frozenset[str]:
    """Content-Encodings urllib3 decodes here (br only with brotli installed, zstd with zstandard)."""
    return frozenset(urllib3.response.HTTPResponse.CONTENT_DECODERS) | {"identity"}


def _undecodable_coding(headers: Any) -> str | None:
    """The first Content-Encoding of the response that cannot be decoded, else None."""
    value = headers.get("Content-Encoding")
    if not value:
        return None
    decodable = _decodable_codings()
    for coding in value.lower().split(","):
        coding = coding.strip()
        if coding and coding not in decodable:
            return coding
    return None


def _content_type(headers: Any) -> tuple[str | None, str, str | None]:
    """(raw header, lowercased media type, charset parameter)."""
    raw = headers.get("Content-Type")
    if not raw:
        return None, "", None
    parts = raw.split(";")
    media = parts[0].strip().lower()
    charset = None
    for param in parts[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("\"'") or None
    return raw, media, charset


_HTML_OPEN_RE = re.compile(rb"<(?:html|body)[\s>]", re.I)
_HTML_CLOSE_RE = re.compile(rb"</(?:html|body)\s*>", re.I)


def _close_delimited(headers: Any) -> bool:
    """The body ends where the server closed the connection (no length, not chunked)."""
    return "Content-Length" not in headers and "chunked" not in headers.get("Transfer-Encoding", "").lower()


def _unclosed_html(body: bytes) -> bool:
    """An HTML document that opens <html>/<body> and never closes either: it was cut short."""
    return bool(_HTML_OPEN_RE.search(body[:8192])) and not _HTML_CLOSE_RE.search(body)


def _read_body(resp: requests.Response, deadline: float, cap: int, total_timeout_s: float) -> bytes:
    """Stream the body; _Failure past `cap` bytes, on a read timeout or past `deadline`."""
    raw = resp.raw
    read = getattr(raw, "read1", None) or raw.read
    buf = bytearray()
    too_slow = f"read timeout (body too slow: the request's {total_timeout_s:g} s deadline passed)"
    try:
        while True:
            if time.monotonic() > deadline:
                raise _Failure("timeout", too_slow, retryable=True)
            chunk = read(65536, decode_content=True)
            if not chunk:
                break
            buf += chunk
            if len(buf) > cap:
                raise _Failure("too_large", f"body over {cap} bytes", bytes_read=len(buf))
    except (urllib3.exceptions.ReadTimeoutError, TimeoutError) as exc:
        if time.monotonic() >= deadline - _DEADLINE_SLACK_S:
            raise _Failure("timeout", too_slow, retryable=True) from exc
        raise _Failure("timeout", "read timeout", retryable=True) from exc
    except urllib3.exceptions.DecodeError as exc:
        coding = resp.headers.get("Content-Encoding", "")
        raise _Failure("content_encoding", f"body does not decode as {coding}: {_describe(exc)}") from exc
    except (urllib3.exceptions.ProtocolError, OSError) as exc:
        if _caused_by(exc, TimeoutError) is not None and time.monotonic() >= deadline - _DEADLINE_SLACK_S:
            raise _Failure("timeout", too_slow, retryable=True) from exc
        raise _Failure("connection", f"connection broken: {_describe(exc)}", retryable=True) from exc
    return bytes(buf)


def _response_body(
    resp: requests.Response, deadline: float, mode: str, max_bytes: int, total_timeout_s: float
) -> bytes | None:
    """The body `mode` reads (None for 3xx/304, and for a 200 that `mode` does not read)."""
    status = resp.status_code
    if status in _REDIRECT_STATUSES or status == 304:
        # Read the (empty or short) body: the connection then goes back to the pool. requests
        # closes the connection of a streamed response left unread, and every 304 of a warm
        # cycle would cost a new TCP connection.
        with contextlib.suppress(_Failure):
            _read_body(resp, deadline, _DRAIN_CAP, total_timeout_s)
        return None
    length = resp.headers.get("Content-Length", "")
    if status == 200:
        _, media, _ = _content_type(resp.headers)
        if mode == FEED:
            if media not in _FEED_TYPES and not media.endswith(("+json", "+xml")):
                return None  # not a feed: not downloaded
        elif mode == PAGE and media not in _HTML_TYPES and media not in _SNIFF_TYPES:
            return None  # not HTML: not downloaded
        coding = _undecodable_coding(resp.headers)
        if coding is not None:
            raise _Failure("content_encoding", f"undecodable content encoding: {coding}")
        if length.strip().isdigit() and int(length) > max_bytes:
            raise _Failure("too_large", f"body over {max_bytes} bytes (Content-Length {int(length)})")
        return _read_body(resp, deadline, max_bytes, total_timeout_s)
    if _undecodable_coding(resp.headers) is not None:
        return b""  # an error answer in an encoding we cannot read: nothing to recognise in it
    # An error answer: read a bounded prefix, enough to recognise a challenge page.
    try:
        return _read_body(resp, deadline, _ERROR_BODY_CAP, total_timeout_s)
    except _Failure as failure:
        if failure.kind == "too_large":
            return b""
        raise


def _peek_text(resp: requests.Response, body: bytes | None) -> str:
    """The text of a body read only to recognise a challenge page in it (header charset, else sniffed)."""
    if not body:
        return ""
    _, _, charset = _content_type(resp.headers)
    return decode_html(body, charset)[0]


def _finish_file(status: int, resp: requests.Response, body: bytes, result: FetchResult) -> None:
    """An attachment (PDF, Word, OFD, spreadsheet …): the bytes as sent, read by
    extraction.files. A challenge or block page served in its place is a fetch error."""
    if not body.strip():
        raise _Failure("empty", "empty body")
    if _HTML_SNIFF_RE.match(body[:1024].lstrip(b"\xef\xbb\xbf")):
        reason = detect_challenge(status, resp.headers, _peek_text(resp, body))
        if reason:
            raise _Failure("challenge", reason)
    result.body = body
    result.text = ""  # read in full; the text comes from the file's own format


def _finish_feed(
    status: int,
    resp: requests.Response,
    body: bytes,
    charset: str | None,
    encoding: str | None,
    result: FetchResult,
) -> None:
    """A listing feed: decoded like a page (XML may declare its encoding), never HTML-sniffed."""
    if charset is None:
        declared = _XML_ENCODING.match(body[:200])
        charset = declared.group(1).decode("ascii") if declared else None
    text, codec, source, bad = decode_html(body, charset, encoding)
    reason = detect_challenge(status, resp.headers, text)
    if reason:
        raise _Failure("challenge", reason)
    result.text, result.encoding = text, codec
    result.encoding_source, result.replacement_chars = source, bad


def _finish(
    status: int,
    resp: requests.Response,
    body: bytes | None,
    media: str,
    charset: str | None,
    request_headers: dict[str, str],
    encoding: str | None,
    result: FetchResult,
) -> None:
    """A page, or any answer but a file's or a feed's 200: not modified, gone, an HTTP error or
    a challenge, or HTML that is checked for being HTML and whole, then decoded."""
    if status == 304:
        if not request_headers:
            raise _Failure("http", "HTTP 304 to an unconditional request")
        result.not_modified = True
        return
    if status != 200:
        reason = detect_challenge(status, resp.headers, _peek_text(resp, body))
        if reason:
            raise _Failure("challenge", reason)
        if status in (404, 410):
            result.gone = True
            return
        if status == 403:
            # A plain refusal: a block by the site (an IP or WAF rule), named like the challenges.
            raise _Failure("http", "HTTP 403 (blocked:403)")
        raise _Failure("http", f"HTTP {status}")
    if body is None:
        raise _Failure("not_html", f"not HTML: {media}")
    if not body.strip():
        raise _Failure("empty", "empty body")
    for magic, kind in _MAGIC:
        if body.startswith(magic):
            raise _Failure("not_html", f"not HTML: {kind} (sniffed; served as {media or 'no type'})")
    if media in _SNIFF_TYPES and not _HTML_SNIFF_RE.match(body[:1024].lstrip(b"\xef\xbb\xbf")):
        raise _Failure(
            "not_html", f"not HTML: {media or 'no content type'} and the body does not look like HTML"
        )
    if _close_delimited(resp.headers) and _unclosed_html(body):
        # Without Content-Length or chunked framing a dropped connection looks like the end of
        # the body: half a page would become a new version with half the text.
        raise _Failure("truncated", "truncated HTML: the connection closed before </body> or </html>")
    text, codec, source, bad = decode_html(body, charset, encoding)
    reason = detect_challenge(status, resp.headers, text)
    if reason:
        raise _Failure("challenge", reason)
    result.text, result.encoding = text, codec
    result.encoding_source, result.replacement_chars = source, bad
