"""The declarative lines file: validation, secrets from the environment, interpolation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from openlines.events.catalog import ChannelType
from openlines.events.lines import load_lines

DEMO = Path(__file__).resolve().parents[3] / "config" / "demo.yaml"


def test_demo_line_is_valid_and_navigable() -> None:
    config = load_lines(DEMO, env={})
    found = config.channel("tg-demo")
    assert found is not None
    line, channel = found
    assert (line.id, channel.type, channel.secret) == ("demo", "telegram", "demo-secret")
    assert channel.api_base == "http://127.0.0.1:8090/sandbox/tg-demo"
    assert [op.id for op in config.operators] == ["ann", "bob", "sue"]
    assert [ln.id for ln in config.lines_of("ann")] == ["demo"]
    assert config.lines_of("sue") == []
    assert config.channel("nope") is None


def test_secrets_and_urls_come_from_the_environment() -> None:
    config = load_lines(
        DEMO,
        env={
            "OPENLINES_SECRET_TG_DEMO": "from-env",
            "OPENLINES_TOKEN_TG_DEMO": "1:tok",
            "OPENLINES_SANDBOX_URL": "http://127.0.0.1:9999",
        },
    )
    _, channel = config.channel("tg-demo")  # type: ignore[misc]
    assert (channel.secret, channel.token) == ("from-env", "1:tok")
    assert channel.api_base == "http://127.0.0.1:9999/sandbox/tg-demo"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lines.yaml"
    path.write_text(text)
    return path


def test_unknown_operator_duplicate_channel_and_bad_sla_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="unknown operators"):
        load_lines(write(tmp_path, "lines: [{id: l, channels: [], operators: [ghost]}]"), env={})
    twice = "{id: c, type: telegram}"
    with pytest.raises(ValidationError, match="configured twice"):
        load_lines(
            write(
                tmp_path, f"lines: [{{id: a, channels: [{twice}]}}, {{id: b, channels: [{twice}]}}]"
            ),
            env={},
        )
    with pytest.raises(ValidationError, match="multiples of 30"):
        load_lines(
            write(tmp_path, "lines: [{id: l, channels: [], sla: {warning_seconds: 45}}]"), env={}
        )
    with pytest.raises(ValidationError, match="at least 30: warning_seconds=0"):
        load_lines(
            write(tmp_path, "lines: [{id: l, channels: [], sla: {warning_seconds: 0}}]"), env={}
        )
    bad_channel = "{id: c, type: email, sla: {warning_seconds: 60, breach_seconds: 45}}"
    with pytest.raises(ValidationError, match="breach_seconds=45"):
        load_lines(write(tmp_path, f"lines: [{{id: l, channels: [{bad_channel}]}}]"), env={})
    with pytest.raises(ValueError, match="MISSING"):
        load_lines(write(tmp_path, "lines: [{id: l, name: '${MISSING}', channels: []}]"), env={})


def test_manual_take_beyond_capacity_is_off_unless_a_line_turns_it_on(tmp_path: Path) -> None:
    assert load_lines(DEMO, env={}).lines[0].manual_take_beyond_capacity is False
    line = "{id: l, channels: [], manual_take_beyond_capacity: %s}"
    assert (
        load_lines(write(tmp_path, f"lines: [{line % 'true'}]"), env={})
        .lines[0]
        .manual_take_beyond_capacity
    )
    with pytest.raises(ValidationError, match="manual_take_beyond_capacity"):
        load_lines(write(tmp_path, f"lines: [{line % 'sometimes'}]"), env={})


def test_the_lines_module_pulls_in_no_io_library() -> None:
    # Pure domains import it: a fresh interpreter shows what importing it really loads.
    probe = (
        "import sys, openlines.events.lines; "
        "print(sorted(m for m in ('aiohttp', 'sqlalchemy', 'aiokafka', 'psycopg', 'openlines.kit')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_channel_type_is_the_catalogs_channel_type(tmp_path: Path) -> None:
    config = load_lines(
        write(tmp_path, "lines: [{id: l, channels: [{id: c, type: viber}]}]"), env={}
    )
    assert config.lines[0].channels[0].type is ChannelType.VIBER
    with pytest.raises(ValidationError, match=r"channels\.0\.type"):
        load_lines(write(tmp_path, "lines: [{id: l, channels: [{id: c, type: fax}]}]"), env={})


def test_a_channel_may_override_the_lines_sla(tmp_path: Path) -> None:
    mail = "{id: mail, type: email, sla: {warning_seconds: 600, breach_seconds: 1200}}"
    chat = "{id: chat, type: telegram}"
    config = load_lines(
        write(
            tmp_path,
            f"lines: [{{id: l, channels: [{mail}, {chat}], sla: {{warning_seconds: 30,"
            " breach_seconds: 60}, test_time_scale: 0.5}]",
        ),
        env={},
    )
    line = config.lines[0]
    assert (line.sla_of("mail").warning_seconds, line.sla_of("chat").warning_seconds) == (600, 30)
    assert line.sla_seconds("mail") == (300.0, 600.0)  # as they elapse, on the test scale


def test_an_email_channel_has_its_own_block_and_relay_password_from_the_environment(
    tmp_path: Path,
) -> None:
    config = load_lines(DEMO, env={"OPENLINES_SMTP_PASSWORD_MAIL_DEMO": "pw"})
    _, channel = config.channel("mail-demo")  # type: ignore[misc]
    assert channel.type is ChannelType.EMAIL and channel.email is not None
    assert channel.email.address == "support@demo.openlines.test"
    assert channel.email.domain == "demo.openlines.test"
    assert channel.email.smtp_relay is not None
    assert (channel.email.smtp_relay.port, channel.email.smtp_relay.password) == (8091, "pw")
    with pytest.raises(ValidationError, match="an `email` block on a telegram channel"):
        load_lines(
            write(
                tmp_path,
                "lines: [{id: l, channels: [{id: c, type: telegram, email: {address: a@b.test}}]}]",
            ),
            env={},
        )
    with pytest.raises(ValidationError, match="address"):
        load_lines(
            write(
                tmp_path, "lines: [{id: l, channels: [{id: c, type: email, email: {address: x}}]}]"
            ),
            env={},
        )


def test_csat_and_classification_are_validated_at_start_up(tmp_path: Path) -> None:
    demo = load_lines(DEMO, env={}).lines[0]
    assert (demo.csat.enabled, demo.csat.scale) == (True, 5)
    assert demo.classification.types == ("question", "complaint", "order")
    assert "follow_up" in demo.classification.statuses and demo.classification.configured
    plain = load_lines(write(tmp_path, "lines: [{id: l, channels: []}]"), env={}).lines[0]
    assert (plain.csat.enabled, plain.csat.scale, plain.classification.configured) == (
        False,
        5,
        False,
    )
    for bad, match in (
        ("csat: {enabled: true, scale: 1}", "scale"),
        ("csat: {enabled: true, scale: 11}", "scale"),
        ("csat: {enabled: true, question: ''}", "question"),
        ("csat: {enabled: maybe}", "enabled"),
        ("csat: {stars: 5}", "stars"),
        ("classification: {types: [a, a]}", "duplicates"),
        ("classification: {reasons: ['Not An Id']}", "reasons"),
        ("classification: {status: [done]}", "status"),
    ):
        with pytest.raises(ValidationError, match=match):
            load_lines(write(tmp_path, f"lines: [{{id: l, channels: [], {bad}}}]"), env={})
