"""DOC, WPS, ET, XLS (binary Word / Kingsoft WPS / Excel formats): converted with LibreOffice
headless (Debian: libreoffice-writer-nogui, libreoffice-calc-nogui) to DOCX / XLSX, then read by
those readers. Without `soffice` on PATH the file is "format not readable", said so by name."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from ._base import Budget, FileExtractionError, FileText, Reader

# kind → (extension, LibreOffice import filter, target format). The filter is named: left to
# detect the type, LibreOffice imports any file it does not recognise as plain text, and a broken
# file would become a version of binary garbage. Kingsoft .wps (WPS 2005 on) and .et files are
# Word 97 and Excel 97 compound files.
_CONVERT = {
    "doc": ("doc", "MS Word 97", "docx"),
    "wps": ("doc", "MS Word 97", "docx"),
    "et": ("xls", "MS Excel 97", "xlsx"),
    "xls": ("xls", "MS Excel 97", "xlsx"),
}
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_RTF = b"{\\rtf"


def converter() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def _unlimited_memory() -> None:
    # LibreOffice maps ~1 GB of address space at start-up: the extraction process's RLIMIT_AS (a
    # soft limit) would stop it. Its wall-clock timeout still bounds it.
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (hard, hard))


class LegacyReader(Reader):
    kinds = tuple(_CONVERT)

    def read(self, body: bytes, kind: str, budget: Budget) -> FileText:
        from . import READERS

        name = budget.name
        soffice = converter()
        if soffice is None:
            raise FileExtractionError(
                f"format not readable: {kind} (a binary Office/WPS format; its converter, LibreOffice "
                "'soffice', is not installed)",
                name,
            )
        ext, infilter, target = _CONVERT[kind]
        if body.startswith(_RTF) and target == "docx":
            ext, infilter = "rtf", "Rich Text Format"  # a .doc that is RTF: common on older sites
        elif not body.startswith(_OLE):
            raise FileExtractionError(f"{kind}: not a {kind} file (no OLE compound file header)", name)
        with tempfile.TemporaryDirectory(prefix="pw-convert-") as tmp:
            src = Path(tmp, f"in.{ext}")
            src.write_bytes(body)
            cmd = [
                soffice,
                f"-env:UserInstallation=file://{tmp}/profile",  # a profile of its own: runs in parallel
                "--headless",
                "--norestore",
                "--nologo",
                "--nolockcheck",
                f"--infilter={infilter}",
                "--convert-to",
                target,
                "--outdir",
                str(Path(tmp, "out")),
                str(src),
            ]
            proc = subprocess.Popen(
                cmd,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_unlimited_memory,  # safe: the extraction process has one thread
                env={**os.environ, "HOME": tmp},
            )
            try:
                _out, err = proc.communicate(timeout=budget.remaining())
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
                raise FileExtractionError(
                    f"{kind}: conversion took longer than the time limit of {budget.limits.time_s:g} s", name
                ) from None
            out = Path(tmp, "out", f"in.{target}")
            if proc.returncode != 0 or not out.exists():
                detail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
                raise FileExtractionError(
                    f"{kind}: LibreOffice could not convert it ({detail[0][:200]})", name
                )
            converted = out.read_bytes()
        text = READERS[target].read(converted, target, budget)
        text.method = f"{kind} (LibreOffice → {target})"
        text.notes = [f"{kind} converted to {target} by LibreOffice", *text.notes]
        return text
