"""OpenCV's classic trackers as baselines, behind the tracker interface the runner uses.

``init(frame, box)`` and ``update(frame) -> TrackResult``. MIL ships with the
main OpenCV wheels; KCF and CSRT need ``opencv-contrib-python-headless`` (they
are looked up in ``cv2`` and ``cv2.legacy``). :func:`available_baselines`
says which ones this OpenCV has; :func:`create_baseline` explains a missing one.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..errors import SiamcliError
from ..tracking.tracker import TrackResult, validate_box

# name -> the factory names tried in cv2, then cv2.legacy
_FACTORIES: Dict[str, Tuple[str, ...]] = {
    "mil": ("TrackerMIL_create",),
    "kcf": ("TrackerKCF_create",),
    "csrt": ("TrackerCSRT_create",),
}
BASELINES = tuple(_FACTORIES)


def _factory(name: str) -> Optional[Callable[[], object]]:
    for attr in _FACTORIES[name]:
        for module in (cv2, getattr(cv2, "legacy", None)):
            make = getattr(module, attr, None) if module is not None else None
            if make is not None:
                return make
    return None


def available_baselines() -> List[str]:
    """Names of the classic trackers this OpenCV build provides."""
    return [n for n in BASELINES if _factory(n) is not None]


def baseline_name(name: str) -> str:
    """The label used in reports: ``opencv_mil`` and so on."""
    return f"opencv_{name}"


class OpenCVTracker:
    """A ``cv2.Tracker*`` with the siamcli tracker interface.

    OpenCV reports only found / not found: the score is 1.0 when found and 0.0
    when not, in which case the previous box is kept (as the benchmark toolkits
    do for a tracker that gives no answer).
    """

    def __init__(self, name: str) -> None:
        key = name.lower().removeprefix("opencv_")
        if key not in _FACTORIES:
            raise SiamcliError(f"unknown baseline {name!r}; OpenCV baselines: {', '.join(BASELINES)}")
        make = _factory(key)
        if make is None:
            raise SiamcliError(
                f"baseline {key} is not in this OpenCV ({cv2.__version__}); it needs "
                "opencv-contrib-python-headless (available here: "
                f"{', '.join(available_baselines()) or 'none'})"
            )
        self.name = baseline_name(key)
        self._make = make
        self._tracker = None
        self._box: Tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)

    def init(self, frame: np.ndarray, box: Sequence[float]) -> None:
        x, y, w, h = validate_box(box, frame.shape)
        self._tracker = self._make()
        rect = (int(round(x)), int(round(y)), max(1, int(round(w))), max(1, int(round(h))))
        self._tracker.init(frame, rect)
        self._box = (x, y, w, h)

    def update(self, frame: np.ndarray) -> TrackResult:
        if self._tracker is None:
            raise RuntimeError("update() called before init()")
        found, rect = self._tracker.update(frame)
        if found:
            self._box = tuple(float(v) for v in rect)  # type: ignore[assignment]
        return TrackResult(box=self._box, score=1.0 if found else 0.0)


def create_baseline(name: str) -> OpenCVTracker:
    """The baseline ``name`` (mil, kcf, csrt, with or without the ``opencv_`` prefix)."""
    return OpenCVTracker(name)

