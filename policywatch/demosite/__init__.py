"""The local demo sources: realistic policy pages built from the sample corpus, served on 127.0.0.1.

`make run` serves them so a newcomer sees the pipeline work without reaching any real site; the
tests build their pages with the same builders.
"""

from pathlib import Path

CORPUS_DIR = Path(__file__).resolve().parent / "corpus"
