"""The whole suite as separate processes, started the way `make run` starts it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from openlines.kit.http.auth import issue_token
from openlines.kit.settings import DEV_JWT_SECRET
from openlines.kit.testing.lines import write_lines
from openlines.stack.services import DEMO_LINES, reserve_port_base

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Stack:
    home: Path
    url: str
    state: dict[str, object]

    def token(self, operator: str, role: str = "operator") -> str:
        return issue_token(operator, [role], secret=DEV_JWT_SECRET)

    def auth(self, operator: str, role: str = "operator") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(operator, role)}"}


def _openlines(*args: str, home: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openlines.cli.main", *args, "--home", str(home)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
    )


def start_stack(home: Path, lines: Path | None = None) -> Stack:
    """`openlines up --detach` on ports reserved for this process (never ephemeral ones)."""
    base = reserve_port_base()
    args = ["up", "--detach", "--kafka-port", "0", "--port-base", str(base)]
    up = _openlines(*args, *(["--lines", str(lines)] if lines else []), home=home)
    if up.returncode != 0:
        logs = (
            "\n".join(
                f"--- {p.name}\n" + p.read_text()[-3000:] for p in sorted((home / "logs").glob("*"))
            )
            if (home / "logs").exists()
            else ""
        )
        raise RuntimeError(f"openlines up failed:\n{up.stdout}\n{up.stderr}\n{logs}")
    state = json.loads((home / "stack.json").read_text())
    return Stack(home=home, url=f"http://127.0.0.1:{base}", state=state)


def stop_stack(stack: Stack) -> None:
    down = _openlines("down", home=stack.home)
    assert down.returncode == 0, down.stdout + down.stderr


# A line of its own for the chaos test (test_chaos.py) beside the demo line: its operators
# and dialogs do not disturb the other tests, nor theirs its counts.
CHAOS_CHANNEL, CHAOS_SECRET = "tg-chaos", "chaos-secret"
CHAOS_OPERATORS = ["op1", "op2", "op3", "op4"]
CHAOS_SUPERVISOR = "boss"


# A line of its own for the quick-replies test (test_workspace_quick.py): qa answers, qb works
# on the line too but is never on the dialog.
QUICK_CHANNEL, QUICK_SECRET = "tg-quick", "quick-secret"
QUICK_OPERATORS = {"qa": "Quick Ann", "qb": "Quick Bob"}

# A line of its own for the rename/pin/edit tests (test_workspace_messages.py): they set its
# operators' presence and count on its routing rotation.
EDIT_CHANNEL, EDIT_SECRET = "tg-edit", "edit-secret"
EDIT_OPERATORS = {"ed1": "Editor ed1", "ed2": "Editor ed2"}

# A line of its own for the transfer tests (test_workspace_transfer.py): their races and
# mentions count on operators nobody else moves; manual routing, so dialogs wait unassigned.
TRANSFER_CHANNEL, TRANSFER_SECRET = "tg-transfer", "transfer-secret"
TRANSFER_OPERATORS = {"tr1": "Transfer tr1", "tr2": "Transfer tr2", "tr3": "Transfer tr3"}

# A line of its own for the reports test (test_reports.py): rp1 answers, rp2 sees only
# their own figures.
REPORTS_CHANNEL, REPORTS_SECRET = "tg-reports", "reports-secret"
REPORTS_OPERATORS = {"rp1": "Report Ann", "rp2": "Report Bob"}


# A line of its own for the timers test (test_timers.py): SLA 30/60 s, re-route after 90 s,
# auto-close after 150 s of inactivity, all on a test-only time scale of 0.1 (3/6/9/15 s), so
# that the stack's real clocks reach them within the test.
TIMERS_CHANNEL, TIMERS_SECRET = "tg-timers", "timers-secret"
TIMERS_OPERATORS = {"tm1": "Timer One", "tm2": "Timer Two"}
TIMERS_SCALE = 0.1


# A line of its own for the e-mail test (test_email.py): one operator, so that routing assigns
# its dialogs to them; a small size limit, so that an oversize mail is cheap to send.
MAIL_CHANNEL, MAIL_ADDRESS, MAIL_SECRET = "mail-e2e", "help@e2e.openlines.test", "mail-e2e-secret"
MAIL_OPERATORS = {"ml1": "Mail One"}
MAIL_MAX_BYTES = 64 * 1024


def _mail_line(config: dict[str, Any]) -> None:
    config["operators"] += [
        {"id": op, "name": name, "role": "operator", "max_dialogs": 5}
        for op, name in MAIL_OPERATORS.items()
    ]
    relay = {
        "host": "127.0.0.1",
        "port": "${OPENLINES_SANDBOX_SMTP_PORT:-8091}",
        "security": "none",
    }
    config["lines"].append(
        {
            "id": "mail",
            "name": "Mail line",
            "channels": [
                {
                    "id": MAIL_CHANNEL,
                    "type": "email",
                    "secret": MAIL_SECRET,
                    "email": {
                        "address": MAIL_ADDRESS,
                        "display_name": "E2E support",
                        "max_message_bytes": MAIL_MAX_BYTES,
                        "smtp_relay": relay,
                    },
                }
            ],
            "operators": list(MAIL_OPERATORS),
            "auto_lead": False,
        }
    )


# A line of its own for the widget tests (test_widget*.py): one operator, a low message rate
# (the 429 test), many sessions (each test's visitors come from one address).
WIDGET_CHANNEL, WIDGET_SECRET = "web-e2e", "web-e2e-secret"
WIDGET_OPERATOR = "wg1"
WIDGET_RATE = 5


def _widget_line(config: dict[str, Any]) -> None:
    config["operators"].append(
        {"id": WIDGET_OPERATOR, "name": "Widget Ann", "role": "operator", "max_dialogs": 50}
    )
    config["lines"].append(
        {
            "id": "widget",
            "name": "Widget line",
            "channels": [
                {
                    "id": WIDGET_CHANNEL,
                    "type": "widget",
                    "secret": WIDGET_SECRET,
                    "widget": {"messages_per_minute": WIDGET_RATE, "sessions_per_minute": 1000},
                }
            ],
            "operators": [WIDGET_OPERATOR],
            "auto_lead": False,
        }
    )


# A line of its own for the WhatsApp test (test_whatsapp.py), with its own operator: going
# online on the demo line would hand wa1 the demo line's backlog of the earlier tests.
WA_CHANNEL, WA_SECRET, WA_VERIFY, WA_PHONE_ID = (
    "wa-e2e",
    "wa-e2e-secret",
    "wa-e2e-verify",
    "100200399",
)
WA_OPERATOR = "wa1"


def _whatsapp_line(config: dict[str, Any]) -> None:
    demo = next(c for line in config["lines"] for c in line["channels"] if c["id"] == "wa-demo")
    config["operators"].append(
        {"id": WA_OPERATOR, "name": "Wa One", "role": "operator", "max_dialogs": 20}
    )
    whatsapp = dict(demo["whatsapp"], phone_number_id=WA_PHONE_ID, verify_token=WA_VERIFY)
    channel = {
        "id": WA_CHANNEL,
        "type": "whatsapp",
        "secret": WA_SECRET,
        "token": demo["token"],
        "api_base": demo["api_base"].replace("/wa-demo", f"/{WA_CHANNEL}"),
        "whatsapp": whatsapp,
    }
    config["lines"].append(
        {
            "id": "wa",
            "name": "WhatsApp line",
            "channels": [channel],
            "operators": [WA_OPERATOR],
            "auto_lead": False,
        }
    )


# A line of its own for the CSAT test (test_csat.py): manual routing (cs1 takes and closes
# by hand), a rating request on close and its own classification values.
CSAT_CHANNEL, CSAT_SECRET = "tg-csat", "csat-secret"
CSAT_OPERATORS = {"cs1": "Csat One", "cs2": "Csat Two"}
CSAT_CLASSIFICATION = {
    "types": ["question", "complaint"],
    "reasons": ["delivery", "payment"],
    "statuses": ["resolved", "unresolved"],
}


# Two lines of their own for the CRM test (test_crm.py), each with its own Telegram bot (the
# same person writes to both, under two accounts, until WhatsApp exists); cr1 works on both.
CRM_CHANNEL, CRM_SECRET = "tg-crm", "crm-secret"
CRM_CHANNEL_2, CRM_SECRET_2 = "tg-crm2", "crm2-secret"
CRM_OPERATORS = {"cr1": "Crm One"}


def _telegram_line(
    config: dict[str, Any],
    line_id: str,
    channel: str,
    secret: str,
    operators: dict[str, str],
    *,
    max_dialogs: int,
    auto_lead: bool = False,
    routing: str = "round_robin",
    **settings: Any,
) -> None:
    """Add a line with one sandbox Telegram channel and its own operators (`settings`: more
    keys of the line, e.g. its sla)."""
    config["operators"] += [
        {"id": op, "name": name, "role": "operator", "max_dialogs": max_dialogs}
        for op, name in operators.items()
    ]
    config["lines"].append(
        {
            "id": line_id,
            "name": f"{line_id.capitalize()} line",
            "channels": [
                {
                    "id": channel,
                    "type": "telegram",
                    "secret": secret,
                    "token": f"123456:{line_id}-bot-token",
                    "api_base": "${OPENLINES_SANDBOX_URL:-http://127.0.0.1:8090}/sandbox/"
                    + channel,
                }
            ],
            "operators": list(operators),
            "routing": routing,
            "auto_lead": auto_lead,
            **settings,
        }
    )


def e2e_lines(directory: Path) -> Path:
    """config/demo.yaml plus the lines of their own of the chaos, workspace and reports tests,
    written to `directory`."""
    config = yaml.safe_load(DEMO_LINES.read_text())
    _telegram_line(
        config,
        "chaos",
        CHAOS_CHANNEL,
        CHAOS_SECRET,
        {op: f"Chaos {op}" for op in CHAOS_OPERATORS},
        max_dialogs=4,
        auto_lead=True,
    )
    config["operators"].append(
        {"id": CHAOS_SUPERVISOR, "name": "Chaos boss", "role": "supervisor", "max_dialogs": 1}
    )
    _telegram_line(config, "quick", QUICK_CHANNEL, QUICK_SECRET, QUICK_OPERATORS, max_dialogs=2)
    _telegram_line(config, "edit", EDIT_CHANNEL, EDIT_SECRET, EDIT_OPERATORS, max_dialogs=4)
    _telegram_line(
        config,
        "transfer",
        TRANSFER_CHANNEL,
        TRANSFER_SECRET,
        TRANSFER_OPERATORS,
        max_dialogs=2,
        routing="manual",
    )
    _telegram_line(
        config, "reports", REPORTS_CHANNEL, REPORTS_SECRET, REPORTS_OPERATORS, max_dialogs=2
    )
    _telegram_line(
        config,
        "timers",
        TIMERS_CHANNEL,
        TIMERS_SECRET,
        TIMERS_OPERATORS,
        max_dialogs=2,
        sla={"warning_seconds": 30, "breach_seconds": 60},
        reroute_after_seconds=90,
        auto_close={"inactive_seconds": 150, "unassigned_seconds": 300},
        test_time_scale=TIMERS_SCALE,
    )
    _mail_line(config)
    _telegram_line(
        config,
        "csat",
        CSAT_CHANNEL,
        CSAT_SECRET,
        CSAT_OPERATORS,
        max_dialogs=4,
        routing="manual",
        csat={"enabled": True, "question": "How did we do?", "scale": 5},
        classification=CSAT_CLASSIFICATION,
    )
    _widget_line(config)
    _whatsapp_line(config)
    _telegram_line(
        config, "crm", CRM_CHANNEL, CRM_SECRET, CRM_OPERATORS, max_dialogs=4, auto_lead=True
    )
    _telegram_line(config, "crm2", CRM_CHANNEL_2, CRM_SECRET_2, {}, max_dialogs=4, auto_lead=True)
    config["lines"][-1]["operators"] = list(CRM_OPERATORS)
    return write_lines(directory, config)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    # Outside pytest's temporary root: every pytest session starting on this machine (test
    # runs side by side) resets that root to mode 0700, and Postgres, running as its own
    # user when we are root, then loses access to its data directory.
    home = Path(tempfile.mkdtemp(prefix="ol-e2e-", dir="/tmp"))
    started = start_stack(home, e2e_lines(home))
    try:
        yield started
    finally:
        stop_stack(started)
        # The logs of the last run stay for a look after a failure.
        kept = REPO / ".openlines" / "e2e-logs"
        shutil.rmtree(kept, ignore_errors=True)
        shutil.copytree(home / "logs", kept, dirs_exist_ok=True)
        shutil.copy2(home / "pg" / "log", kept / "postgres.log")
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Figures a test recorded with `record_property("figures", ...)`, shown after the run
    (the chaos test's messages, kills, lost, duplicated), whether it passed or failed."""
    for outcome in ("passed", "failed"):
        for report in terminalreporter.stats.get(outcome, []):
            for name, value in getattr(report, "user_properties", []):
                if name == "figures" and getattr(report, "when", None) == "call":
                    terminalreporter.write_line(f"{report.nodeid}: {value}")
