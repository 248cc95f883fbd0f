"""`openlines replay dialogs` on a stack holding thousands of dialog events (issue 14 §5): the
command shows its progress, reports no differences from the live model, and `--switch` runs
while the API is polled throughout without one failed request.

The size is `OPENLINES_REPLAY_STACK_EVENTS` (default 2,000, written one event per append and
projection as the writers do; about a minute on a busy 2-core machine); `openlines bench
replay` runs the same scenario at 100,000 and prints its figures. Every wait is on a condition
(the outbox relayed, the API answering, the command's exit), each bounded.
"""

from __future__ import annotations

import os

import pytest

from openlines.bench.replay_stack import replay_on_a_stack

pytestmark = pytest.mark.infra  # runs the openlines command in processes of its own

EVENTS = int(os.environ.get("OPENLINES_REPLAY_STACK_EVENTS", "2000"))


async def test_replay_dialogs_on_a_stack_shows_progress_differs_in_nothing_and_switches(
    database_url: str, kafka_bootstrap: str
) -> None:
    run = await replay_on_a_stack(database_url, kafka_bootstrap, EVENTS, timeout=240)
    assert run.events == EVENTS
    out = run.compare.output
    assert run.compare.returncode == 0, out
    # The progress bar, finished: every event read, with a rate and the lag to live.
    assert f"{EVENTS:,}/{EVENTS:,} events" in out, out
    assert "lag to live 0" in out, out
    assert "differences: none" in out, out
    assert run.rebuild_rate > 0, out
    switched = run.switch.output
    assert run.switch.returncode == 0, switched
    assert "switched: dialogs now reads the rebuilt tables" in switched, switched
    # The API answered throughout (before, during and after the switch), never with an error.
    assert set(run.statuses) == {200}, run.statuses
    assert run.requests_during_switch > 10
    print(
        f"{run.events:,} events, {run.dialogs:,} dialogs (written in {run.fill_seconds:.1f}s): "
        f"rebuild {run.rebuild_rate:,.0f} events/s, raw fetch {run.raw_fetch_rate:,.0f}/s; "
        f"compare {run.compare.seconds:.1f}s, switch {run.switch.seconds:.1f}s; {run.statuses}"
    )
