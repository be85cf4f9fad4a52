"""Where the contract and the migrations live (the repository's top-level folders)."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def openapi_path() -> Path:
    """The OpenAPI document, openapi/openapi.yaml."""
    return PROJECT_ROOT / "openapi" / "openapi.yaml"


def migrations_dir(dialect: str) -> Path:
    """The forward-only migrations of a dialect, migrations/<dialect>/NNNN_*.sql."""
    return PROJECT_ROOT / "migrations" / dialect
