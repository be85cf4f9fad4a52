"""JSON text for storage and responses: orjson, with the stdlib for what orjson refuses."""

from __future__ import annotations

import json
from typing import Any

import orjson


def dump_json(value: Any, sort_keys: bool = False) -> bytes:
    """Serialise a JSON value; integers beyond 64 bits fall back to the stdlib."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS if sort_keys else None)
    except TypeError:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys)
        return text.encode()
