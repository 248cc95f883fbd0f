"""`openlines token <operator> [--role ...] [--ttl 12h]`: print a dev JWT for the operator API.

Signed with OPENLINES_JWT_SECRET, or the kit's dev default: the same secret the local
services verify with. The role defaults to the operator's role in the lines config.
"""

from __future__ import annotations

import argparse
import re
import sys

_TTL = re.compile(r"^(\d+)([smhd]?)$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def ttl_seconds(text: str) -> int:
    """`90`, `90s`, `15m`, `12h`, `7d` → seconds."""
    match = _TTL.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"invalid ttl {text!r}: use e.g. 90s, 15m, 12h or 7d")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("token", help="print a dev JWT for an operator")
    parser.add_argument("operator", help="operator id, e.g. ann")
    parser.add_argument(
        "--role",
        choices=["operator", "supervisor", "admin"],
        default=None,
        help="default: the operator's role in the lines config, else operator",
    )
    parser.add_argument("--ttl", type=ttl_seconds, default=12 * 3600, help="e.g. 12h (default)")
    parser.add_argument(
        "--line", action="append", dest="lines", help="restrict the token to a line (repeatable)"
    )
    parser.add_argument("--lines-file", default=None, help="default: $OPENLINES_LINES_FILE")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: every command module is imported for each `openlines` call.
    from openlines.cli.commands.say import load_lines_config
    from openlines.kit.http.auth import issue_token
    from openlines.kit.settings import DEV_JWT_SECRET, KitSettings

    role = args.role
    if role is None:
        lines = load_lines_config(args.lines_file, required=False)
        operator = lines.operator(args.operator) if lines is not None else None
        if operator is None:
            print(f"note: {args.operator!r} is not in the lines config", file=sys.stderr)
        role = operator.role if operator is not None else "operator"
    settings = KitSettings()
    secret = settings.jwt_secret
    if args.ttl > settings.jwt_max_lifetime_seconds:
        print(
            f"note: services refuse tokens living longer than {settings.jwt_max_lifetime_seconds}"
            " s (OPENLINES_JWT_MAX_LIFETIME_SECONDS): raise it for them to accept this one",
            file=sys.stderr,
        )
    if secret == DEV_JWT_SECRET:
        print(
            "note: signed with the dev secret (set OPENLINES_JWT_SECRET in production)",
            file=sys.stderr,
        )
    token = issue_token(
        args.operator, [role], secret=secret, ttl_seconds=args.ttl, lines=args.lines
    )
    print(token)
    return 0
