"""Request validation against the spec's schemas, compiled once per operation at start-up."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema_rs

from app.api.spec import Operation, Spec
from app.core.errors import FieldError, InvalidInput


def _compile(spec: Spec, schema: dict[str, Any]) -> jsonschema_rs.Draft202012Validator:
    # Local refs point at #/components/...; give every schema the components as its root.
    root = {"components": spec.components, "allOf": [schema]}
    return jsonschema_rs.Draft202012Validator(root, validate_formats=True)


def _field_name(prefix: str, path: list[str | int]) -> str:
    name = prefix
    for part in path:
        name += f"[{part}]" if isinstance(part, int) else f".{part}"
    return name


def _errors(
    validator: jsonschema_rs.Draft202012Validator, instance: Any, prefix: str
) -> list[FieldError]:
    if validator.is_valid(instance):
        return []
    return [_field_error(error, prefix) for error in validator.iter_errors(instance)][:20]


def _field_error(error: jsonschema_rs.ValidationError, prefix: str) -> FieldError:
    """Name the field itself: a missing property, not its parent; say plainly what `not` meant."""
    path = list(error.instance_path)
    kind = error.kind
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Required):
        return FieldError(_field_name(prefix, [*path, kind.property]), "is required")
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Not):
        excluded = kind.schema.get("required") if isinstance(kind.schema, dict) else None
        if isinstance(excluded, list) and excluded:
            together = " and ".join(str(name) for name in excluded)
            return FieldError(_field_name(prefix, path), f"{together} cannot be given together")
    return FieldError(_field_name(prefix, path), _clip(error.message))


@dataclass(frozen=True, slots=True)
class _Param:
    name: str
    location: str
    required: bool
    kind: str | None
    validator: jsonschema_rs.Draft202012Validator


def _coerce(raw: str, kind: str | None) -> Any:
    """A query/path/header string as the schema's scalar type; ValueError if it is not."""
    if kind == "integer":
        return int(raw)
    if kind == "number":
        value = float(raw)
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        return value
    if kind == "boolean":
        if raw in ("true", "false"):
            return raw == "true"
        raise ValueError("expected true or false")
    return raw


class OperationValidator:
    """Checks one operation's parameters and body; raises InvalidInput naming each field."""

    def __init__(self, spec: Spec, operation: Operation) -> None:
        self.operation = operation
        self._params = [
            _Param(
                name=param["name"],
                location=param["in"],
                required=bool(param.get("required")),
                kind=self._scalar_kind(spec, param.get("schema", {})),
                validator=_compile(spec, param.get("schema", {})),
            )
            for param in operation.parameters
        ]
        locations = {param.location for param in self._params}
        self.reads_query = "query" in locations
        self.reads_headers = "header" in locations
        body = operation.request_body
        self.body_required = bool(body and body.get("required"))
        self.accepts_body = body is not None
        self._body_validator = None
        if body is not None:
            schema = body["content"]["application/json"]["schema"]
            self._body_validator = _compile(spec, schema)

    @staticmethod
    def _scalar_kind(spec: Spec, schema: dict[str, Any]) -> str | None:
        resolved = spec.resolve(schema) if "$ref" in schema else schema
        kind = resolved.get("type")
        return kind if isinstance(kind, str) else None

    def parameters(
        self,
        path: Mapping[str, str],
        query: Mapping[str, str],
        headers: Mapping[str, str],
    ) -> dict[str, Any]:
        """Validated, typed parameter values by name (absent optional ones left out)."""
        sources = {"path": path, "query": query, "header": headers}
        values: dict[str, Any] = {}
        errors: list[FieldError] = []
        for param in self._params:
            source = sources.get(param.location, {})
            key = param.name.lower() if param.location == "header" else param.name
            if key not in source:
                if param.required:
                    errors.append(FieldError(f"{param.location}.{param.name}", "is required"))
                continue
            try:
                value = _coerce(source[key], param.kind)
            except ValueError:
                errors.append(
                    FieldError(f"{param.location}.{param.name}", f"must be of type {param.kind}")
                )
                continue
            found = _errors(param.validator, value, f"{param.location}.{param.name}")
            if found:
                errors.extend(found)
                continue
            values[param.name] = value
        if errors:
            raise InvalidInput(_summary(errors), errors)
        return values

    def body(self, document: Any) -> None:
        """Check a parsed JSON body against the operation's schema."""
        if self._body_validator is None:
            return
        errors = _errors(self._body_validator, document, "body")
        if errors:
            raise InvalidInput(_summary(errors), errors)


def item_validator(spec: Spec, schema_name: str) -> jsonschema_rs.Draft202012Validator:
    """A validator for one named component schema (e.g. batch items as TaskSubmit)."""
    return _compile(spec, {"$ref": f"#/components/schemas/{schema_name}"})


def item_errors(
    validator: jsonschema_rs.Draft202012Validator, instance: Any, prefix: str
) -> list[FieldError]:
    """Field errors of one item (empty when valid)."""
    return _errors(validator, instance, prefix)


def _summary(errors: list[FieldError]) -> str:
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{first.field}: {first.message}{more}"


def _clip(message: str, limit: int = 300) -> str:
    """Schema messages quote the offending value; keep them readable."""
    return message if len(message) <= limit else message[: limit - 1] + "…"
