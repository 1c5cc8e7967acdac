"""The configuration's JSON Schema (Draft 2020-12), generated from `policywatch.config_models`.

Editors read it to complete and check config/sources.yaml (VS Code's YAML extension: a
`# yaml-language-server: $schema=sources.schema.json` first line, or its `yaml.schemas` setting).
The loader does not use it: `policywatch.config` validates with the models themselves, and also
checks what a schema cannot say (regexes that could hang, CSS selectors, encodings, schedules).

    python -m policywatch.config_schema          # writes config/sources.schema.json
    python -m policywatch.config_schema --check  # exit 1 if the committed file is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic.json_schema import GenerateJsonSchema

from policywatch.config_models import ConfigModel

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "config" / "sources.schema.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"


class _Schema(GenerateJsonSchema):
    schema_dialect = DRAFT

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False  # "Min Delay S" says nothing the key does not


def config_schema() -> dict[str, Any]:
    schema = ConfigModel.model_json_schema(mode="validation", schema_generator=_Schema)
    return {"$schema": DRAFT, **schema}


def schema_text() -> str:
    return json.dumps(config_schema(), ensure_ascii=False, indent=2, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policywatch.config_schema", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only compare with the committed file")
    parser.add_argument("--output", type=Path, default=SCHEMA_PATH)
    args = parser.parse_args(argv)
    text = schema_text()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: run python -m policywatch.config_schema", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
