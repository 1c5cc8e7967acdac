"""Zip containers (DOCX, XLSX, OFD) checked before any member is decompressed."""

from __future__ import annotations

import io
import zipfile

from ._base import Budget, FileExtractionError

_MiB = 2**20


def open_zip(body: bytes, kind: str, budget: Budget) -> zipfile.ZipFile:
    """The archive, once its member count, declared sizes and compression ratios are within limits.

    The declared sizes are a bound on what reading can produce: zipfile stops a member's output at
    its declared size and fails its CRC check when the data says otherwise (a test checks this).
    """
    name, limits = budget.name, budget.limits
    try:
        archive = zipfile.ZipFile(io.BytesIO(body))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise FileExtractionError(f"{kind}: broken or truncated zip ({exc})", name) from None
    infos = archive.infolist()
    if len(infos) > limits.max_zip_members:
        raise FileExtractionError(f"{kind}: {len(infos)} zip members (limit {limits.max_zip_members})", name)
    total = 0
    for info in infos:
        if info.flag_bits & 0x1:
            raise FileExtractionError(f"{kind}: encrypted zip member {info.filename!r}", name)
        if info.file_size > limits.max_member_bytes:
            raise FileExtractionError(
                f"{kind}: zip member {info.filename!r} decompresses to {info.file_size} bytes "
                f"(limit {limits.max_member_bytes})",
                name,
            )
        if info.file_size > _MiB and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise FileExtractionError(
                f"{kind}: zip member {info.filename!r} compressed {info.file_size // max(info.compress_size, 1)}:1 "
                f"(limit {limits.max_ratio:g}:1, a zip bomb)",
                name,
            )
        total += info.file_size
    if total > limits.max_total_bytes:
        raise FileExtractionError(
            f"{kind}: zip decompresses to {total} bytes (limit {limits.max_total_bytes})", name
        )
    return archive


def read_member(archive: zipfile.ZipFile, member: str, kind: str, budget: Budget) -> bytes:
    try:
        return archive.read(member)
    except KeyError:
        raise FileExtractionError(f"{kind}: zip member {member!r} missing", budget.name) from None
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise FileExtractionError(f"{kind}: zip member {member!r} unreadable ({exc})", budget.name) from None
