"""siamcli: real-time single-object visual tracking (SiamRPN, SiamRPN++, SiamBAN, NanoTrack).

>>> import siamcli
>>> tracker = siamcli.Tracker()              # the bundled default model  # doctest: +SKIP
>>> tracker.init(frame, (x, y, w, h))                                    # doctest: +SKIP
>>> result = tracker.update(next_frame)      # TrackResult(box, score, state)  # doctest: +SKIP

``siamcli.track(source, box)`` iterates over a whole video, folder of frames or camera, and
``siamcli.list_models()`` lists the models. The names are imported on first use, so that
``import siamcli`` (which the command line does first) stays cheap.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import SiamcliError

if TYPE_CHECKING:
    from .api import ModelInfo, Tracker, list_models, track
    from .tracking.tracker import TrackResult

__all__ = ["Tracker", "TrackResult", "track", "list_models", "ModelInfo", "SiamcliError", "__version__"]

_LAZY = {"Tracker": "api", "track": "api", "list_models": "api", "ModelInfo": "api",
         "TrackResult": "tracking.tracker"}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import version

        return version(__name__)
    if name == "models":  # the subpackage of networks, not imported yet: say where the listing is
        raise AttributeError(f"module {__name__!r} has no attribute 'models': siamcli.list_models() lists the "
                             "models, and siamcli.models is the subpackage holding the networks")
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    try:
        module = import_module(f".{_LAZY[name]}", __name__)
    except ModuleNotFoundError as exc:
        if exc.name == "cv2":
            from .errors import OPENCV_MISSING

            raise ModuleNotFoundError(OPENCV_MISSING, name="cv2") from None
        raise
    return getattr(module, name)


def __dir__() -> list:
    return sorted(set(globals()) | set(__all__))
