"""Finds a spec operation's endpoint from (method, path) in one lookup.

Starlette's router tries its routes one after the other, each with a regular expression,
and wraps the endpoint in two more layers; for the API's own operations the edge
middleware asks this table instead (literal paths in a dict, templated ones bucketed by
their number of segments) and calls the endpoint directly. Whatever the table does not
hold (unknown paths, a method the path does not have, the docs' assets, a `root_path`)
goes on to Starlette's router, which answers it exactly as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Found:
    """A matched operation: its endpoint, the path parameters and the path template."""

    endpoint: Endpoint
    path_params: dict[str, str]
    template: str


@dataclass(frozen=True, slots=True)
class _Template:
    path: str
    # One entry per segment: the literal text, or None where a parameter stands.
    segments: tuple[str | None, ...]
    names: tuple[str, ...]
    methods: Mapping[str, Endpoint]


class OperationTable:
    """(method, path) → endpoint for the spec's operations, Starlette's matching rules:
    a `{name}` segment matches one non-empty segment, literal paths win over templates,
    templates are tried in the order given, and HEAD is served by GET."""

    def __init__(self, endpoints: Mapping[str, Mapping[str, Endpoint]]) -> None:
        """endpoints: path template -> {HTTP method -> endpoint}, in matching order."""
        self._literal: dict[str, Mapping[str, Endpoint]] = {}
        self._templates: dict[int, list[_Template]] = {}
        for path, by_method in endpoints.items():
            methods = dict(by_method)
            if "GET" in methods:
                methods.setdefault("HEAD", methods["GET"])
            if "{" not in path:
                self._literal[path] = methods
                continue
            parts = path.split("/")
            segments = tuple(
                None if part.startswith("{") and part.endswith("}") else part for part in parts
            )
            names = tuple(part[1:-1] for part in parts if part.startswith("{"))
            self._templates.setdefault(len(parts), []).append(
                _Template(path, segments, names, methods)
            )

    def find(self, method: str, path: str) -> Found | None:
        """The operation for `method` on `path`, or None to let the router decide."""
        methods = self._literal.get(path)
        if methods is not None and method in methods:
            return Found(methods[method], {}, path)
        parts = path.split("/")
        for template in self._templates.get(len(parts), ()):
            endpoint = template.methods.get(method)
            if endpoint is None:
                continue
            values = _parameters(template, parts)
            if values is not None:
                return Found(
                    endpoint, dict(zip(template.names, values, strict=True)), template.path
                )
        return None


def _parameters(template: _Template, parts: list[str]) -> list[str] | None:
    values: list[str] = []
    for expected, actual in zip(template.segments, parts, strict=True):
        if expected is None:
            if not actual:
                return None
            values.append(actual)
        elif expected != actual:
            return None
    return values
