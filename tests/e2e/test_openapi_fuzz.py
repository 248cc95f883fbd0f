"""schemathesis against the running suite, through the gateway, from the document the gateway
serves: no 5xx, and every answer conforms to the document (status, content type, body).

Bounded: a fixed number of generated cases per operation and mode (valid and invalid input),
one request each. Dialog operations also get a dialog that exists (its id taken from the list
answer, as an OpenAPI link would), so they are exercised past the 404. Authenticated as a
supervisor. Webhooks are fuzzed without the channel's secret: a valid update would open real
dialogs and fill the demo operators' capacity under the other e2e tests.

Runs last in this directory (file order), after the other tests used the shared stack.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import Stack
from .steps import CHANNEL, SECRET, telegram_update

pytestmark = pytest.mark.infra  # runs servers or processes of its own

EXAMPLES = 20  # per operation and generation mode
SCENARIOS = 25  # stateful, each up to 6 linked calls
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
NEGATIVE_CHECKS = [*CHECKS, negative_data_rejection]


class Tally:
    def __init__(self) -> None:
        self.sent = 0
        self.server_errors = 0
        self.statuses: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.examples: dict[str, str] = {}

    def run(self, case: Any, url: str, headers: dict[str, str], checks: list[Any]) -> None:
        response = case.call(base_url=url, headers=headers, timeout=30)
        self.check(case, response, headers, checks)

    def check(self, case: Any, response: Any, headers: dict[str, str], checks: list[Any]) -> None:
        self.sent += 1
        self.statuses[f"{case.operation.label} {response.status_code}"] += 1
        if response.status_code >= 500:
            self.server_errors += 1
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except (FailureGroup, Failure) as exc:
            failures = exc.exceptions if isinstance(exc, FailureGroup) else [exc]
            for failure in failures:
                key = f"{case.operation.label}: {failure.title}"
                self.failures[key] += 1
                self.examples.setdefault(
                    key,
                    f"{case.method} {case.formatted_path} query={case.query}"
                    f" body={case.body!r:.200} -> {response.status_code} {response.text[:300]}",
                )


def _fuzz(
    strategy: Any, tally: Tally, url: str, headers: dict[str, str], checks: list[Any]
) -> None:
    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.generate],  # no shrinking: failures are counted, not raised
        suppress_health_check=list(HealthCheck),
    )
    def one(case: Any) -> None:
        tally.run(case, url, headers, checks)

    with contextlib.suppress(Unsatisfiable):  # nothing to negate (no parameters, no body)
        one()


def _stateful(schema: Any, tally: Tally, url: str, headers: dict[str, str]) -> None:
    """Scenarios that follow the document's links: a dialog id from the list (or from a dialog)
    goes on to get, timeline, take, reply, close, reopen and the CRM lead."""

    class Scenarios(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": url, "headers": headers, "timeout": 30}

        def validate_response(self, response: Any, case: Any, *args: Any, **kwargs: Any) -> None:
            tally.check(case, response, headers, CHECKS)

    Scenarios.run(
        settings=settings(
            max_examples=SCENARIOS,
            stateful_step_count=6,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
    )


def _open_dialog(stack: Stack, headers: dict[str, str], name: str) -> str:
    chat_id = 990_000 + sum(name.encode()) * 7 + int(time.time()) % 1_000
    sent = requests.post(
        f"{stack.url}/webhooks/telegram/{CHANNEL}",
        json=telegram_update(chat_id, name, "a dialog for the contract test"),
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        timeout=30,
    )
    assert sent.status_code == 200, sent.text
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        page = requests.get(
            f"{stack.url}/api/v1/dialogs",
            params={"q": name},
            headers=headers,
            timeout=30,
        )
        items = page.json()["items"]
        if items:
            return str(items[0]["id"])
        time.sleep(0.2)
    raise AssertionError("the dialog for the contract test never appeared")


@pytest.mark.timeout(900)  # ~2300 requests: over 300 s on a loaded 2-core machine
def test_the_running_suite_honours_its_openapi_document(
    stack: Stack, record_property: Callable[[str, object], None]
) -> None:
    headers = stack.auth("sue", "supervisor")
    served = requests.get(f"{stack.url}/api/v1/openapi.json", timeout=120)
    assert served.status_code == 200, served.text
    schema = schemathesis.openapi.from_dict(served.json())
    # One dialog for the commands that move it along (take, close, spam...), one that stays
    # open for replies and a lead.
    moved = _open_dialog(stack, headers, "Fuzz Moved")
    kept = _open_dialog(stack, headers, "Fuzz Kept")
    session = requests.post(f"{stack.url}/widget/web-demo/sessions", timeout=30).json()
    visitor = {"Authorization": f"Bearer {session['token']}"}
    tally = Tally()
    started = time.monotonic()
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    for operation in operations:
        if operation.path == "/api/v1/stream":
            continue  # a WebSocket: tests/stack and notify's tests drive it
        _fuzz(operation.as_strategy(), tally, stack.url, headers, CHECKS)
        if len(operation.path_parameters) or len(operation.query) or len(operation.body):
            negative = operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)
            _fuzz(negative, tally, stack.url, headers, NEGATIVE_CHECKS)
        if "{id}" in operation.path or "{dialog_id}" in operation.path:
            name = "id" if "{id}" in operation.path else "dialog_id"
            moves = operation.method.upper() == "POST" and not operation.path.endswith(
                ("/messages", "/lead")
            )
            strategy = operation.as_strategy(path_parameters={name: moved if moves else kept})
            _fuzz(strategy, tally, stack.url, headers, CHECKS)
        if operation.path.startswith("/widget/{channel_id}"):
            # The demo widget channel, as a visitor: past the 404 and the 401 (one visitor,
            # so at most one dialog on the demo line).
            strategy = operation.as_strategy(path_parameters={"channel_id": "web-demo"})
            _fuzz(strategy, tally, stack.url, visitor, CHECKS)
    stateless = tally.sent
    _stateful(schema, tally, stack.url, headers)
    elapsed = time.monotonic() - started
    nonconforming = sum(tally.failures.values())
    # Shown after the run by conftest's terminal summary, whether the test passed or not.
    record_property(
        "figures",
        f"{len(operations)} operations, {tally.sent} requests ({stateless} stateless) in"
        f" {elapsed:.0f} s, {tally.server_errors} x 5xx, {nonconforming} nonconforming",
    )
    print(
        f"\nschemathesis: {len(operations)} operations, {tally.sent} requests sent"
        f" ({stateless} stateless, {tally.sent - stateless} in linked scenarios) in"
        f" {elapsed:.0f} s, {tally.server_errors} x 5xx, {nonconforming} nonconforming"
    )
    successes = sorted(k for k in tally.statuses if k.rsplit(" ", 1)[1].startswith("2"))
    print("  answered 2xx: " + ", ".join(f"{k} x{tally.statuses[k]}" for k in successes))
    for key, count in tally.failures.most_common():
        print(f"  {count} x {key}\n      e.g. {tally.examples[key]}")
    assert tally.sent > 300
    assert tally.server_errors == 0
    assert nonconforming == 0
