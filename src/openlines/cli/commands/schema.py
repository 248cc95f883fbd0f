"""``openlines schema export DIR``: the published event schemas (JSON Schema + AsyncAPI) and the
HTTP API (OpenAPI), each generated from the models the code uses."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("schema", help="published event schemas")
    sub = parser.add_subparsers(dest="schema_command", required=True)
    export = sub.add_parser(
        "export",
        help="write a JSON Schema per event type, an AsyncAPI and an OpenAPI document",
        description=(
            "Writes DIR/schemas/<topic>/<Type>.v<version>.json, DIR/asyncapi.json (the services'"
            " FastStream subscribers and publishers) and DIR/openapi.json (the HTTP API, as the"
            " gateway serves it at /api/v1/openapi.json)."
        ),
    )
    export.add_argument("dir", type=Path, metavar="DIR")
    export.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    import json  # keep `openlines --help` fast

    from openlines.events.schema import export
    from openlines.stack.asyncapi import asyncapi_document
    from openlines.stack.contract import openapi_document

    written = export(args.dir)
    asyncapi_file = args.dir / "asyncapi.json"
    asyncapi_file.write_text(json.dumps(asyncapi_document(), indent=2) + "\n")
    written.append(asyncapi_file)
    openapi_file = args.dir / "openapi.json"
    openapi_file.write_text(json.dumps(openapi_document(), indent=2) + "\n")
    written.append(openapi_file)
    for path in written:
        print(path)
    print(f"{len(written)} files written to {args.dir}")
    return 0
