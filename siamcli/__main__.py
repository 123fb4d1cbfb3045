"""The ``siamcli`` command's process: the console script and ``python -m siamcli`` start here.

Ctrl-C is answered with one line and exit code 130 from the first instruction on,
the imports included (they take a good part of a second before any command
runs), and stderr is siamcli's (:mod:`siamcli.stderr`) while the command runs.
A run in progress handles SIGINT itself (:mod:`siamcli.frame_loop`, its ``SignalGuard``) and keeps its
boxes. A missing OpenCV (neither ``siamcli[headless]`` nor ``siamcli[gui]``
installed) is one line too, whether it shows when the commands are loaded or
when one of them runs.
"""
import signal
import sys

from .errors import OPENCV_MISSING


class Interrupted(BaseException):
    """SIGINT outside a tracking run. Not a KeyboardInterrupt, which click would turn into a
    blank line on stderr before its own ``Abort``."""


def _raise_interrupted(_signum, _frame) -> None:
    raise Interrupted()


def _exit_with(line: str, code: int) -> None:
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    sys.exit(code)


def main(argv=None) -> None:
    previous = signal.signal(signal.SIGINT, _raise_interrupted)
    try:
        from .cli import main as run_command
        from .stderr import owned_stderr

        with owned_stderr():
            run_command(argv)
    except (Interrupted, KeyboardInterrupt):
        _exit_with("siamcli: interrupted", 130)
    except ModuleNotFoundError as exc:
        if exc.name != "cv2":
            raise
        _exit_with(f"siamcli: error: {OPENCV_MISSING}", 2)
    finally:
        signal.signal(signal.SIGINT, previous)


if __name__ == "__main__":
    main()
