"""The extraction child process: reads a JSON header line and the file from stdin, limits its own
address space and CPU time, writes {"text": FileText} or {"error": reason} to stdout."""

from __future__ import annotations

import json
import math
import resource
import sys
from dataclasses import asdict


def main() -> int:
    header = json.loads(sys.stdin.buffer.readline())
    limits_data = header["limits"]
    # Soft limits (hard ones untouched), so that the LibreOffice converter can lift the memory one.
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    memory = int(limits_data["memory_bytes"])
    if hard == resource.RLIM_INFINITY or memory < hard:
        resource.setrlimit(resource.RLIMIT_AS, (memory, hard))
    cpu = math.ceil(float(limits_data["time_s"])) + 2
    _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard == resource.RLIM_INFINITY or cpu < hard:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, hard))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    body = sys.stdin.buffer.read()

    from . import FileExtractionError, FileLimits, _read

    limits = FileLimits(**{**limits_data, "isolate": False})
    try:
        text = _read(body, header["kind"], header["url"], limits)
        result: dict[str, object] = {"text": asdict(text)}
    except FileExtractionError as exc:
        result = {"error": exc.reason}
    del body
    sys.stdout.write(json.dumps(result, ensure_ascii=False))
    sys.stdout.flush()
    return 0
