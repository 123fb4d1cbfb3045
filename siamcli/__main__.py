"""The ``siamcli`` command's process: the console script and ``python -m siamcli`` start here.

Ctrl-C is answered with one line and exit code 130 from the first instruction on,
the imports included (they take a good part of a second before any command
runs), and stderr is siamcli's (:mod:`siamcli.stderr`) while the command runs.
A run in progress handles SIGINT itself (:mod:`siamcli.runloop`) and keeps its
boxes.
"""
import signal
import sys


class Interrupted(BaseException):
    """SIGINT outside a tracking run. Not a KeyboardInterrupt, which click would turn into a
    blank line on stderr before its own ``Abort``."""


def _raise_interrupted(_signum, _frame) -> None:
    raise Interrupted()


def _interrupted() -> None:
    try:
        sys.stderr.write("siamcli: interrupted\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    sys.exit(130)


def main(argv=None) -> None:
    previous = signal.signal(signal.SIGINT, _raise_interrupted)
    try:
        from .cli import main as run_command
        from .stderr import owned_stderr

        with owned_stderr():
            run_command(argv)
    except (Interrupted, KeyboardInterrupt):
        _interrupted()
    finally:
        signal.signal(signal.SIGINT, previous)


if __name__ == "__main__":
    main()
