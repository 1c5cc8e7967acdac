"""What every `policywatch` command shares: the exit-status exceptions, the store, and printing.

`UsageError` and `RunError` are what commands raise for `main` (policywatch.cli) to turn into exit
status 2 or 1 with one line on stderr; they live here, not in policywatch.cli, because the command
modules (policywatch.cli_cycle, policywatch.cli_read) raise them and `main` must catch the very same
classes, also when policywatch.cli runs as `python -m policywatch.cli` (its `__main__` copy).
Page text is untrusted: `_one_line` and `_lines` keep control characters from the terminal.
"""

from __future__ import annotations

import json
from typing import Any


class UsageError(Exception):
    """Bad arguments found after parsing (exit 2)."""


class RunError(Exception):
    """The command could not do its job (exit 1)."""


def _engine() -> Any:
    from storage.db import make_engine

    return make_engine()


def _read_session() -> Any:
    from storage.db import ensure_schema, session_factory

    engine = _engine()
    ensure_schema(engine)
    return session_factory(engine)()


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def _lines(text: str) -> str:
    """Multi-line page text for the terminal: line breaks kept, every other control character neutralised."""
    return "\n".join(_one_line(line) for line in text.split("\n"))


def failure_line(failure: dict[str, str]) -> str:
    """One failure of a cycle for the terminal: the URL and the reason come from the web."""
    return f"  error [{failure['source']}] {_one_line(failure['url'])}: {_one_line(failure['error'])}"


def _one_line(text: str | None) -> str:
    """Page text is untrusted: no control characters (CR/LF, escapes) reach the terminal."""
    if not text:
        return ""
    return "".join(ch if ch.isprintable() else " " for ch in text)
