"""Where the contract and the migrations live: the checkout's top-level folders, or
<prefix>/share/taskgate when taskgate is installed from a wheel."""

from __future__ import annotations

import sys
from pathlib import Path

CHECKOUT_ROOT = Path(__file__).resolve().parent.parent
INSTALLED_ROOT = Path(sys.prefix) / "share" / "taskgate"


def _root() -> Path:
    if (CHECKOUT_ROOT / "openapi" / "openapi.yaml").is_file():
        return CHECKOUT_ROOT
    return INSTALLED_ROOT


def openapi_path() -> Path:
    """The OpenAPI document, openapi/openapi.yaml."""
    return _root() / "openapi" / "openapi.yaml"


def migrations_dir(dialect: str) -> Path:
    """The forward-only migrations of a dialect, migrations/<dialect>/NNNN_*.sql."""
    return _root() / "migrations" / dialect
