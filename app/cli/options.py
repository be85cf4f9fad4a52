"""CLI flags generated from Settings, each falling back to its TASKGATE_* variable."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.settings import Settings, SettingsError, env_name, load_settings, setting_fields


def add_settings_flags(
    parser: argparse.ArgumentParser, names: tuple[str, ...] | None = None
) -> None:
    """One `--name` flag per setting (or per listed setting), with its env var in the help."""
    parser.add_argument(
        "--config",
        type=Path,
        help=f"TOML or YAML file of settings (env {env_name('config')})",
    )
    defaults = Settings()
    for spec in setting_fields():
        if names is not None and spec.name not in names:
            continue
        flag = "--" + spec.name.replace("_", "-")
        choices = spec.metadata.get("choices") or None
        default = getattr(defaults, spec.name)
        help_text = f"{spec.metadata['help']} (env {env_name(spec.name)}; default {default!r})"
        if spec.type in ("bool", bool):
            parser.add_argument(
                flag,
                dest=spec.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        else:
            parser.add_argument(
                flag,
                dest=spec.name,
                default=None,
                choices=choices,
                metavar=None if choices else spec.name.upper(),
                help=help_text,
            )


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from defaults < config file < environment < flags.

    Raises:
        SettingsError: an invalid value, named.
    """
    overrides: dict[str, Any] = {
        spec.name: getattr(args, spec.name)
        for spec in setting_fields()
        if getattr(args, spec.name, None) is not None
    }
    return load_settings(config_file=args.config, overrides=overrides)


__all__ = ["SettingsError", "add_settings_flags", "settings_from_args"]
