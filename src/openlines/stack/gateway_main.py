"""`python -m openlines.stack.gateway_main`: the gateway as a process (port from
OPENLINES_HTTP_PORT, default 8080; upstreams from OPENLINES_GATEWAY_UPSTREAMS)."""

from __future__ import annotations

from openlines.kit.http.app import serve_app
from openlines.kit.log import get_logger, setup_logging
from openlines.stack.gateway import GatewaySettings, create_gateway_app

log = get_logger(__name__)


def main() -> None:
    settings = GatewaySettings()
    setup_logging(settings.service_name, settings.log_level, settings.log_json)
    app = create_gateway_app(settings)
    log.info("gateway", http=f"http://{settings.http_host}:{settings.http_port}")
    serve_app(app, settings)


if __name__ == "__main__":
    main()
