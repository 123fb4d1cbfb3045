"""Progress displays on stderr that leave no line behind when the command fails."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.progress import Progress


@contextmanager
def progress_display(*columns, console: Console, quiet: bool) -> Iterator[Progress]:
    """A rich :class:`Progress` with ``columns``. The finished bar stays on screen; a failing
    command's bar is taken away (and the blank line rich ends a non-terminal display with is
    left out), so its error is the one line it prints."""
    progress = Progress(*columns, console=console, disable=quiet, transient=False)
    progress.start()
    try:
        yield progress
    except BaseException:
        progress.live.transient = True
        progress.live.stop()
        raise
    progress.stop()
