"""Machine-readable descriptions of the config format (`navigator schema`).

Room: pure. Generated from the msgspec Structs in `schema`, so it never drifts from what
the loader accepts.
"""

from __future__ import annotations

import json

from navigator.schema import json_schema


def schema_json() -> str:
    """The JSON Schema of navigator.yml, pretty-printed, ending with a newline."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
