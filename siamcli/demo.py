"""The sample clip that ships with siamcli, so that a first run needs no video of one's own.

``siamcli track --demo`` tracks it; from Python, ``siamcli.track(demo_video(), DEMO_BOX)``.
Its source and licence: ``siamcli/samples/README.md``.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from .errors import SiamcliError

#: the woman in the black coat on the clip's first frame (x, y, w, h in pixels)
DEMO_BOX = (374.0, 423.0, 57.0, 152.0)
DEMO_FILE = "walker.mp4"


def demo_video() -> Path:
    """Path of the sample clip inside the installed package."""
    path = resources.files(__package__) / "samples" / DEMO_FILE
    if not isinstance(path, Path) or not path.is_file():
        raise SiamcliError(f"siamcli's sample clip {DEMO_FILE} is not installed; reinstall siamcli")
    return path
