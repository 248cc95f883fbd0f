"""`openlines say --channel web-demo --chat 42 "text"`: a site's backend writes for visitor 42.

Posts the widget's own JSON to `/webhooks/widget/<channel>`, signed as a site's server signs
it (`X-Openlines-Timestamp`, `X-Openlines-Signature`: see `openlines.ingest.widget`), with the
channel's secret from the lines config. The visitor id is the `--chat` value.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request


def say_widget(args: argparse.Namespace, secret: str) -> int:
    from openlines.ingest.widget import signed_headers

    message: dict[str, object] = {
        "visitor_id": str(args.chat),
        "name": args.name,
        "text": args.text,
    }
    if args.message_id is not None:
        message["message_id"] = str(args.message_id)
    body = json.dumps(message).encode()
    url = f"{args.url.rstrip('/')}/webhooks/widget/{args.channel}"
    request = urllib.request.Request(
        url, data=body, method="POST", headers=signed_headers(args.secret or secret, body)
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode()
    except (urllib.error.URLError, OSError) as exc:
        print(f"cannot reach {url}: {exc} (is the stack running? `openlines up`)", file=sys.stderr)
        return 1
    print(f"{status} {text}")
    return 0 if 200 <= status < 300 else 1
