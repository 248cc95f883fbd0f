"""A WhatsApp channel's block in the lines config: secrets from the environment, templates."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from openlines.events.lines import WhatsAppTemplate, load_lines

YAML = """
operators: [{id: ann}]
lines:
  - id: l
    channels:
      - id: wa-sales
        type: whatsapp
        secret: file-secret
        api_base: https://graph.facebook.com
        whatsapp:
          phone_number_id: "123"
          verify_token: file-verify
          templates:
            - {name: order_update, language: en, text: "Order {{1}} is {{2}}; thanks, {{1}}."}
"""


def test_secret_token_and_verify_token_come_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "lines.yaml"
    path.write_text(YAML)
    env = {
        "OPENLINES_SECRET_WA_SALES": "env-secret",
        "OPENLINES_TOKEN_WA_SALES": "env-token",
        "OPENLINES_VERIFY_TOKEN_WA_SALES": "env-verify",
    }
    found = load_lines(path, env).channel("wa-sales")
    assert found is not None
    channel = found[1]
    assert (channel.secret, channel.token) == ("env-secret", "env-token")
    assert channel.whatsapp is not None
    assert channel.whatsapp.verify_token == "env-verify"
    assert channel.whatsapp.api_version == "v21.0"
    unchanged = load_lines(path, {}).channel("wa-sales")
    assert unchanged is not None and unchanged[1].whatsapp is not None
    assert unchanged[1].whatsapp.verify_token == "file-verify"


def test_templates_count_and_fill_their_placeholders() -> None:
    template = WhatsAppTemplate(name="order_update", text="Order {{1}} is {{2}}; thanks, {{1}}.")
    assert template.variable_count == 2
    assert template.render(("A1", "late")) == "Order A1 is late; thanks, A1."
    assert WhatsAppTemplate(name="hello", text="Hello!").variable_count == 0
    with pytest.raises(ValidationError):
        WhatsAppTemplate(name="Not A Name", text="x")


def test_the_demo_channel_is_configured() -> None:
    demo = Path(__file__).resolve().parents[3] / "config" / "demo.yaml"
    found = load_lines(demo, {}).channel("wa-demo")
    assert found is not None
    line, channel = found
    assert (line.id, channel.type, channel.secret) == ("demo", "whatsapp", "demo-app-secret")
    assert channel.whatsapp is not None
    assert channel.whatsapp.phone_number_id == "100200300"
    assert channel.whatsapp.verify_token == "demo-verify-token"
    assert channel.api_base.endswith("/sandbox/wa-demo")
    assert channel.whatsapp.template("order_update", "en") is not None
