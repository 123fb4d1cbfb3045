"""The ``siamcli`` command and ``python -m siamcli``: :func:`siamcli.cli.main`, with a missing
OpenCV (neither ``siamcli[headless]`` nor ``siamcli[gui]`` installed) reported as one line, whether
it shows when the commands are loaded or when one of them runs."""
import sys

from .errors import OPENCV_MISSING


def run() -> None:
    try:
        from .cli import main

        main()
    except ModuleNotFoundError as exc:
        if exc.name != "cv2":
            raise
        print(f"siamcli: error: {OPENCV_MISSING}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    run()
