"""Option types shared by several commands."""
from __future__ import annotations

import click


class ThreadCount(click.ParamType):
    """A thread count from 1 to the cores this process may use: far more threads than cores
    only slow a run down, and thousands of them keep the runtimes busy creating threads for
    minutes before the first frame."""

    name = "integer"

    def convert(self, value, param, ctx):
        from .batch.executors import usable_cores

        if isinstance(value, int):
            count = value
        else:
            try:
                count = int(str(value).strip())
            except ValueError:
                self.fail(f"{value!r} is not a whole number", param, ctx)
        cores = usable_cores()
        if not 1 <= count <= cores:
            self.fail(f"{count} is not between 1 and {cores} (the cores siamcli may use here)", param, ctx)
        return count


THREADS = ThreadCount()
