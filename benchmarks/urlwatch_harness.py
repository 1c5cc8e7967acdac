"""urlwatch on the benchmark site: its own venv (installed from PyPI by the benchmark), one job per
page with the filters that extract the same body PolicyWatch extracts (`css:` on the page style's
body container, then `html2text`), its default 10 worker threads, its own cache per repetition.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from benchmarks.pages import doc_spec

URLWATCH_VERSION = "2.29"
# html2text and cssselect: the `html2text` and `css` filters need them (urlwatch lists them as extras).
URLWATCH_PACKAGES = (f"urlwatch=={URLWATCH_VERSION}", "html2text", "cssselect")
_REPORT_LINE = re.compile(r"^\d+\. (NEW|CHANGED|ERROR|EMPTY-DIFF): ", re.M)


def ensure_urlwatch(venv: Path) -> Path:
    """The urlwatch executable in `venv`, creating the venv and installing urlwatch if needed."""
    exe = venv / "bin" / "urlwatch"
    if exe.exists():
        version = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=False).stdout
        if URLWATCH_VERSION in version:
            return exe
    print(f"installing urlwatch {URLWATCH_VERSION} into {venv} ...", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *URLWATCH_PACKAGES], check=True
    )
    return exe


@dataclass
class UrlwatchJobs:
    exe: Path
    workdir: Path

    def write(self, base_url: str, pages: int) -> None:
        """Jobs for every page, and a config: report to stdout only, plain text, no colour."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        jobs = [
            {
                "name": f"doc-{i}",
                "url": f"{base_url}{doc_spec(i).path}",
                "filter": [{"css": doc_spec(i).selector}, "html2text"],
            }
            for i in range(pages)
        ]
        (self.workdir / "urls.yaml").write_text(
            yaml.safe_dump_all(jobs, allow_unicode=True), encoding="utf-8"
        )
        config = {
            "display": {"new": True, "error": True, "unchanged": False, "empty-diff": True},
            "report": {
                "text": {
                    "details": True,
                    "footer": True,
                    "line_length": 75,
                    "minimal": False,
                    "separate": False,
                },
                "stdout": {"enabled": True, "color": False},
                "html": {"diff": "unified", "separate": False},
                "markdown": {"details": True, "footer": True, "minimal": False, "separate": False},
            },
            "job_defaults": {"all": {}, "url": {}, "browser": {}, "shell": {}},
        }
        (self.workdir / "urlwatch.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")

    def fresh_cache(self) -> None:
        for name in ("cache.db", "cache.db-journal", "cache.db-wal"):
            (self.workdir / name).unlink(missing_ok=True)

    def command(self) -> list[str]:
        return [
            str(self.exe),
            "--urls",
            str(self.workdir / "urls.yaml"),
            "--config",
            str(self.workdir / "urlwatch.yaml"),
            "--cache",
            str(self.workdir / "cache.db"),
            "--hooks",
            str(self.workdir / "hooks.py"),
        ]

    @staticmethod
    def reported(stdout: str) -> dict[str, int]:
        """What the report lists: {"NEW": n, "CHANGED": n, "ERROR": n, ...}."""
        counts: dict[str, int] = {}
        for kind in _REPORT_LINE.findall(stdout):
            counts[kind] = counts.get(kind, 0) + 1
        return counts
