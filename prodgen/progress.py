"""Rich progress bars shared by long operations."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def make_progress(transient: bool = False, enabled: bool = True) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        transient=transient,
        disable=not enabled,
    )


@contextlib.contextmanager
def progress_factory(description: str) -> Iterator[Callable[[int], Callable[[int], None]]]:
    """Yield `start(total) -> advance(n)`, for library functions that learn their total late."""
    with make_progress() as progress:

        def start(total: int) -> Callable[[int], None]:
            task = progress.add_task(description, total=total)
            return lambda n: progress.advance(task, n)

        yield start
