"""A clock a test moves by hand: timers are tested by travelling in time, never by sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class TravelClock:
    """Starts at the wall clock's now and stands still until the test moves it (`advance`).

    Hand it as the runtime's `clock` (the timer worker's "now"), and date the events the test
    publishes with `now()`: a timer due 60 s after a message then fires on `advance(60)`."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self._now

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        self._now += timedelta(seconds=seconds)
        return self._now
