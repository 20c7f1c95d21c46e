#!/usr/bin/env python3
"""Validates every line of results.jsonl files against docs/results.schema.json.

usage: validate-results.py SCHEMA RESULTS.jsonl...  (exit 1 on the first bad line)
"""
import json
import sys

import jsonschema


def main() -> int:
    schema = json.load(open(sys.argv[1], encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    total = 0
    for path in sys.argv[2:]:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                errors = sorted(validator.iter_errors(json.loads(line)), key=str)
                if errors:
                    e = errors[0]
                    where = "/".join(str(p) for p in e.absolute_path)
                    print(f"{path}:{n}: {where}: {e.message}", file=sys.stderr)
                    return 1
                total += 1
    print(f"{total} records valid against {sys.argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
