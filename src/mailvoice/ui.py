"""Terminal output: progress bars and notices on stderr, summaries on stdout.

Nothing here ever prints email text, tokens or keys; callers pass counts and paths only.
"""

from __future__ import annotations

import contextlib
import os

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


def notice(msg: str) -> None:
    err.print(f"[yellow]note:[/] {msg}")


def progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=err,
        transient=False,
        disable=bool(os.environ.get("MAILVOICE_NO_PROGRESS")),
    )


@contextlib.contextmanager
def step(description: str, total: int | None = None):
    """A progress bar for one long step; yields ``advance(n=1, total=None)``."""
    with progress() as p:
        task = p.add_task(description, total=total)

        def advance(n: int = 1, total: int | None = None, completed: int | None = None):
            if total is not None:
                p.update(task, total=total)
            if completed is not None:
                p.update(task, completed=completed)
            else:
                p.advance(task, n)

        yield advance
        t = p.tasks[0]
        if t.total is None:
            p.update(task, total=max(t.completed, 1), completed=max(t.completed, 1))
