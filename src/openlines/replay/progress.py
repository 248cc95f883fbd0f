"""One progress bar for replay and export: events, rate, ETA and the lag to the live end."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from openlines.kit.replay import ReplayProgress


class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} events/s" if speed else "- events/s")


class EventProgress:
    """`update(label, ReplayProgress)` as the kit's replay reports it."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def update(self, label: str, p: ReplayProgress) -> None:
        task = self.tasks.get(label)
        if task is None:
            task = self.tasks[label] = self.progress.add_task(label, total=p.total, lag=p.lag)
        self.progress.update(task, completed=min(p.done, p.total), total=p.total, lag=p.lag)


@contextmanager
def event_progress(console: Console) -> Iterator[EventProgress]:
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} events"),
        _Rate(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("lag to live {task.fields[lag]:,}"),
        console=console,
        transient=False,
    ) as progress:
        yield EventProgress(progress)
