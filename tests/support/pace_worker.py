"""A process that fetches pages of one host with a given pacer (tests/test_pacing.py).

    python -m tests.support.pace_worker KIND TARGET INTERVAL URL...

KIND: local | file | postgres (TARGET: a directory, a database URL, or -). Prints "ready" once its
fetcher is built; with URL `hold`, takes one turn of 127.0.0.1 and holds it until killed.
"""

from __future__ import annotations

import sys
import time

from crawlers import Fetcher
from crawlers.pacing import FilePacer, HostPacer, LocalPacer


def pacer(kind: str, target: str) -> HostPacer:
    if kind == "file":
        return FilePacer(target)
    if kind == "postgres":
        from storage.host_turns import PostgresPacer

        return PostgresPacer(target)
    return LocalPacer()


def main(argv: list[str]) -> int:
    kind, target, interval, *urls = argv
    with Fetcher(pacer=pacer(kind, target), max_attempts=1, respect_robots=False) as fetcher:
        if urls == ["hold"]:
            with fetcher.pacer.turn("127.0.0.1", float(interval)):
                print("holding", flush=True)
                time.sleep(600)
            return 0
        print("ready", flush=True)
        sys.stdin.readline()  # start together
        for url in urls:
            result = fetcher.fetch_page(url, min_delay_s=float(interval), allow_private=True)
            if result.error:
                print(result.error, file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
