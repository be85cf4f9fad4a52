"""taskgate server: an HTTP-only task platform (api → service → core, service → store)."""

__version__ = "0.1.0"
