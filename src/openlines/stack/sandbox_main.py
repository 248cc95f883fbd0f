"""`python -m openlines.stack.sandbox_main`: the sandbox provider as a process (port from
OPENLINES_HTTP_PORT, default 8090; bot tokens and webhook secrets of the channels in
OPENLINES_LINES_FILE; button presses and WhatsApp status webhooks go to the webhooks under
OPENLINES_WEBHOOK_BASE; the SMTP relay of their email channels on OPENLINES_SMTP_PORT, when
set)."""

from __future__ import annotations

from pathlib import Path

from openlines.events.lines import load_lines
from openlines.kit.http.app import serve_app
from openlines.kit.log import get_logger, setup_logging
from openlines.stack.sandbox import SandboxSettings, create_sandbox_app

log = get_logger(__name__)


def main() -> None:
    settings = SandboxSettings()
    setup_logging(settings.service_name, settings.log_level, settings.log_json)
    tokens: dict[str, str] = {}
    mail_channels: dict[str, str] = {}
    secrets: dict[str, str] = {}
    if Path(settings.lines_file).is_file():
        lines = load_lines(settings.lines_file)
        tokens = {c.id: c.token for line in lines.lines for c in line.channels if c.token}
        mail_channels = {
            c.email.address: c.id for line in lines.lines for c in line.channels if c.email
        }
        secrets = {c.id: c.secret for line in lines.lines for c in line.channels if c.secret}
    app = create_sandbox_app(settings, tokens, mail_channels, secrets=secrets)
    log.info(
        "sandbox provider",
        http=f"http://{settings.http_host}:{settings.http_port}",
        smtp=f"{settings.smtp_host}:{settings.smtp_port}" if settings.smtp_port else None,
    )
    serve_app(app, settings)


if __name__ == "__main__":
    main()
