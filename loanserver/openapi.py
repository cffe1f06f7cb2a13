"""``python -m loanserver.openapi``: print the API's OpenAPI schema (docs/openapi.json).

The schema comes from ``create_app`` on an in-memory SQLite engine (nothing is stored);
keys are sorted and indented so that the committed file diffs well. A test compares the
committed file with this output.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from loanserver import db
from loanserver.api.app import create_app


def schema() -> dict[str, Any]:
    """The OpenAPI schema of the loan server app."""
    engine = db.make_engine("sqlite://")
    try:
        return create_app(engine).openapi()
    finally:
        engine.dispose()


def render() -> str:
    """The schema as committed: sorted keys, indent 2, one final newline."""
    return json.dumps(schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> int:
    """Print the schema on stdout."""
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
