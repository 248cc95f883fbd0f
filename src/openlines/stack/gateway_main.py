"""`python -m openlines.stack.gateway_main`: the gateway as a process (port from
OPENLINES_HTTP_PORT, default 8080; upstreams from OPENLINES_GATEWAY_UPSTREAMS)."""

from __future__ import annotations

from aiohttp import web

from openlines.kit.eventloop import new_event_loop
from openlines.kit.log import get_logger, setup_logging
from openlines.stack.gateway import GatewaySettings, create_gateway_app

log = get_logger(__name__)


def main() -> None:
    settings = GatewaySettings()
    setup_logging(settings.service_name, settings.log_level, settings.log_json)
    app = create_gateway_app(settings)
    log.info("gateway", http=f"http://{settings.http_host}:{settings.http_port}")
    # run_app turns SIGTERM and SIGINT into a graceful exit.
    web.run_app(
        app,
        host=settings.http_host,
        port=settings.http_port,
        access_log=None,
        print=None,
        loop=new_event_loop(),
    )


if __name__ == "__main__":
    main()
