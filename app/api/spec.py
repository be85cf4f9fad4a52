"""The OpenAPI document, loaded once at start-up, and the operations it declares."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


@dataclass(frozen=True, slots=True)
class Operation:
    """One (method, path) of the spec."""

    operation_id: str
    method: str
    path: str
    parameters: tuple[dict[str, Any], ...]
    request_body: dict[str, Any] | None
    # The bearer scopes the operation needs; None when it is open (`security: []`).
    scopes: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Spec:
    """The parsed document plus its serialised forms (served as-is)."""

    document: dict[str, Any]
    yaml_bytes: bytes
    json_bytes: bytes

    @property
    def components(self) -> dict[str, Any]:
        components: dict[str, Any] = self.document.get("components", {})
        return components

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        """Follow a local `$ref` (e.g. to components/parameters) to its target."""
        while "$ref" in node and len(node) == 1:
            target: Any = self.document
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = target
        return node

    def operations(self) -> list[Operation]:
        """Every operation in document order."""
        found: list[Operation] = []
        for path, item in self.document.get("paths", {}).items():
            shared = [self.resolve(p) for p in item.get("parameters", [])]
            for method in HTTP_METHODS:
                if method not in item:
                    continue
                raw = item[method]
                parameters = shared + [self.resolve(p) for p in raw.get("parameters", [])]
                body = raw.get("requestBody")
                security = raw.get("security", self.document.get("security", []))
                found.append(
                    Operation(
                        operation_id=raw.get("operationId", ""),
                        method=method.upper(),
                        path=path,
                        parameters=tuple(parameters),
                        request_body=self.resolve(body) if body else None,
                        scopes=_bearer_scopes(security),
                    )
                )
        return found


def _bearer_scopes(security: list[dict[str, list[str]]]) -> tuple[str, ...] | None:
    if not security:
        return None
    scopes: list[str] = []
    for requirement in security:
        scopes += requirement.get("bearerAuth", [])
    return tuple(scopes)


def load_spec(path: Path) -> Spec:
    """Read and parse the OpenAPI YAML once."""
    raw = path.read_bytes()
    document = yaml.safe_load(raw)
    return Spec(document=document, yaml_bytes=raw, json_bytes=orjson.dumps(document))
