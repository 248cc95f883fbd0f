"""Liveness and readiness built from checks that the runtime's components register."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Check = Callable[[], Awaitable[bool] | bool]


@dataclass
class Health:
    # liveness: the process is making progress (loops ticking); failing means "restart me".
    live: dict[str, Check] = field(default_factory=dict)
    # readiness: dependencies answer and consumers are caught up enough to serve.
    ready: dict[str, Check] = field(default_factory=dict)

    async def evaluate(self, checks: dict[str, Check]) -> tuple[bool, dict[str, bool]]:
        results: dict[str, bool] = {}
        for name, check in checks.items():
            try:
                outcome = check()
                if isinstance(outcome, Awaitable):
                    outcome = await outcome
                results[name] = bool(outcome)
            except Exception:
                results[name] = False
        return all(results.values()), results
