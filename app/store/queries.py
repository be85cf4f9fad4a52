"""Loads named SQL queries (`-- name: NAME` sections) from the per-dialect .sql files."""

from __future__ import annotations

import re
from importlib import resources

_NAME_LINE = re.compile(r"^--\s*name:\s*(?P<name>[a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def parse_named_queries(text: str) -> dict[str, str]:
    """Split a .sql file into {name: statement}.

    Raises:
        ValueError: a name appears twice.
    """
    queries: dict[str, str] = {}
    matches = list(_NAME_LINE.finditer(text))
    for position, match in enumerate(matches):
        end = matches[position + 1].start() if position + 1 < len(matches) else len(text)
        body = text[match.end() : end].strip()
        name = match.group("name")
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        queries[name] = body
    return queries


def load_queries(dialect: str) -> dict[str, str]:
    """All named queries of a dialect (`sqlite`, later `postgres`)."""
    folder = resources.files("app.store") / "sql" / dialect
    queries: dict[str, str] = {}
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if entry.name.endswith(".sql"):
            queries.update(parse_named_queries(entry.read_text(encoding="utf-8")))
    return queries
