"""`openlines say --channel web-demo --chat 42 "text"`: a site's backend writes for visitor 42.

The widget's own JSON for `/webhooks/widget/<channel>`, signed as a site's server signs it
(`X-Openlines-Timestamp`, `X-Openlines-Signature`: see `openlines.ingest.widget`), with the
channel's secret from the lines config. The visitor id is the `--chat` value.
"""

from __future__ import annotations

import argparse
import json


def widget_webhook(args: argparse.Namespace, secret: str) -> tuple[bytes, dict[str, str]]:
    """The body and the signature headers."""
    from openlines.ingest.widget import signed_headers

    message: dict[str, object] = {
        "visitor_id": str(args.chat),
        "name": args.name,
        "text": args.text,
    }
    if args.message_id is not None:
        message["message_id"] = str(args.message_id)
    body = json.dumps(message).encode()
    return body, signed_headers(args.secret or secret, body)
