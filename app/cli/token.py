"""`taskgate token create`: mint a bearer token with the server's secret."""

from __future__ import annotations

import argparse
import re

from app.auth.principal import SCOPES
from app.auth.setup import ensure_secret, secret_path, token_rules
from app.auth.signing_keys import load_signing_keys
from app.auth.tokens import mint_token
from app.cli.options import add_settings_flags
from app.settings import Settings

TTL_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
MAX_TTL_S = 10 * 365 * 86_400


def parse_ttl(text: str) -> int:
    """`90s`, `15m`, `12h`, `30d` (or plain seconds) as seconds.

    Raises:
        argparse.ArgumentTypeError: not a positive duration of at most ten years.
    """
    match = re.fullmatch(r"(\d+)([smhd]?)", text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90s, 15m, 12h or 30d")
    seconds = int(match.group(1)) * TTL_UNITS[match.group(2) or "s"]
    if not 0 < seconds <= MAX_TTL_S:
        raise argparse.ArgumentTypeError("the lifetime must be between 1 s and 10 years")
    return seconds


def add_token_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="token_action", required=True)
    create = actions.add_parser(
        "create",
        help="print a new token signed with the server secret",
        description="Print a new bearer token signed with the server's secret (the file "
        "next to the database, or --auth-secret-file). The server must use the same secret, "
        "issuer and audience.",
    )
    create.add_argument(
        "--scope",
        action="append",
        required=True,
        choices=SCOPES,
        help="a scope the token carries (repeat for several)",
    )
    create.add_argument(
        "--queue",
        action="append",
        help="limit the token to queues matching this pattern, e.g. 'reports.*' (repeatable)",
    )
    create.add_argument("--ttl", type=parse_ttl, default="30d", help="lifetime (default 30d)")
    create.add_argument("--subject", default="admin", help="who the token is for (default admin)")
    add_settings_flags(
        create, names=("database", "auth_secret_file", "auth_issuer", "auth_audience")
    )
    create.set_defaults(command_parser=create)


def create_token(settings: Settings, args: argparse.Namespace) -> str:
    """The token asked for by `taskgate token create` (creating the secret if needed)."""
    ensure_secret(settings)
    signing_key = load_signing_keys(secret_path(settings))[0]
    return mint_token(
        signing_key,
        token_rules(settings),
        subject=args.subject,
        scopes=args.scope,
        ttl_seconds=args.ttl,
        queues=args.queue,
    )
