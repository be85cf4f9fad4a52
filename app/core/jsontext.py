"""JSON text for storage and responses: orjson, with the stdlib for what orjson refuses."""

from __future__ import annotations

import json
from typing import Any

import orjson


def dump_json(value: Any) -> bytes:
    """Serialise a JSON value; integers beyond 64 bits fall back to the stdlib."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
