"""How a page's HTML is kept: compressed, keyed by the sha256 of its UTF-8 bytes. No database here.

Packing is CPU work (a 60 KB page takes zlib a millisecond or two), so the observe stage packs a page
it has read in full, in its worker, and the version stage only stores the result.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass

COMPRESSION_LEVEL = 6


@dataclass(frozen=True)
class PackedPage:
    sha256: str  # of the UTF-8 bytes: the RawPage key
    body: bytes  # zlib-compressed UTF-8
    size: int  # bytes before compression


def pack_page(html: str) -> PackedPage:
    data = html.encode("utf-8")
    return PackedPage(hashlib.sha256(data).hexdigest(), zlib.compress(data, COMPRESSION_LEVEL), len(data))


def pack_file(data: bytes) -> PackedPage:
    """An attachment's bytes as sent (PDF, Word, OFD …), keyed by their sha256, compressed."""
    return PackedPage(hashlib.sha256(data).hexdigest(), zlib.compress(data, COMPRESSION_LEVEL), len(data))


def unpack_page(body: bytes) -> str:
    """The HTML of a RawPage body (as pack_page compressed it)."""
    return zlib.decompress(body).decode("utf-8")
