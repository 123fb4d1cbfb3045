"""What ``siamcli track`` and ``siamcli webcam`` do with each tracked frame: the sinks on top of
:func:`siamcli.frame_loop.track_frames`.

Every frame's box goes to the box file and, with ``--save-video``, the frame with its box drawn
to the annotated video; with a window (``webcam``) the frame is shown and keys select a new
target, pause or quit. A frame's outputs are written together before a signal is let through
(the frame loop holds it), so the box file and the video always hold the same frames.
"""
from __future__ import annotations

import time
from contextlib import closing
from typing import Callable, List, Optional, Protocol, Sequence

import numpy as np

from .errors import SiamcliError
from .frame_loop import FirstBox, RunReport, track_frames
from .io.draw import draw_box, draw_status
from .tracking.multi import MultiTracker
from .tracking.states import TRACKING
from .tracking.tracker import TrackResult

KEY_ACTIONS = {ord("s"): "select", ord(" "): "select", ord("p"): "pause", ord("q"): "quit", 27: "quit"}


def key_action(code: int) -> Optional[str]:
    """The action of a key code from ``cv2.waitKey`` (``select``, ``pause``, ``quit``) or None."""
    if code is None or code < 0:
        return None
    return KEY_ACTIONS.get(code & 0xFF)


class Controls(Protocol):
    """What the loop needs from a window: show a frame and return the key pressed (-1: none),
    wait for a key while paused, and let the user draw a box (None: cancelled)."""

    def show(self, frame: np.ndarray) -> int: ...

    def wait_key(self) -> int: ...

    def select(self, frame: np.ndarray) -> Optional[Sequence[float]]: ...


class KeySourceControls:
    """Controls without a window: key codes come from ``keys()`` (one call per frame, and per
    wait while paused), boxes from ``select(frame)``. Used headless and by tests."""

    def __init__(self, keys: Callable[[], int], select: Optional[Callable[[np.ndarray], Optional[Sequence[float]]]] = None,
                 pause_wait: float = 0.0) -> None:
        self.keys, self._select, self.pause_wait = keys, select, pause_wait
        self.shown = 0

    def show(self, frame: np.ndarray) -> int:
        self.shown += 1
        return self.keys()

    def wait_key(self) -> int:
        if self.pause_wait:
            time.sleep(self.pause_wait)
        return self.keys()

    def select(self, frame: np.ndarray):
        return self._select(frame) if self._select else None


def run_tracking(
    source,
    tracker,
    box_writer,
    *,
    init_box: Optional[FirstBox],
    video_writer=None,
    controls: Optional[Controls] = None,
    max_frames: Optional[int] = None,
    duration: Optional[float] = None,
    label: str = "",
    on_frame: Optional[Callable[[int, TrackResult, float], None]] = None,
    first_index: int = 0,
) -> RunReport:
    """Track through ``source`` writing every frame's box to ``box_writer``.

    Without ``init_box`` the first box is drawn through ``controls`` (``init_box`` may also be a
    function that draws it). Keys from ``controls``: s/space re-select the target on the frame
    shown, p pauses and resumes, q/Esc quit. Stops at the end of the source, after ``max_frames``
    rows, after ``duration`` seconds, on q/Esc, or on SIGINT/SIGTERM (reported in the returned
    :class:`~siamcli.frame_loop.RunReport`; the caller closes the sinks). ``first_index``: the
    number the box file gives the first frame (the source's own index of it, when it starts later).
    """
    report = RunReport()
    first_box = init_box if init_box is not None else (controls.select if controls is not None else None)
    if first_box is None:
        raise SiamcliError("no target box was drawn (selection cancelled); pass --init x,y,w,h to skip it")
    several = isinstance(tracker, MultiTracker)
    annotate = video_writer is not None or controls is not None
    fps_live = 0.0

    def annotated(frame: np.ndarray, results: List[TrackResult]) -> np.ndarray:
        out = frame.copy()
        for k, r in enumerate(results):
            draw_box(out, r.box, r.score, state=r.state, label=f"#{k}" if several else "")
        if controls is not None:
            r = results[0]
            draw_status(out, f"{label}  {fps_live:5.1f} fps  score {r.score:.2f}  {r.state}"
                        + (f"  {len(results)} targets" if several else ""))
        return out

    def emit(index: int, frame: np.ndarray, results: List[TrackResult]) -> bool:
        """Show, handle keys, write the sinks; False when the user quits."""
        picture = annotated(frame, results) if annotate else None
        action = key_action(controls.show(picture)) if controls is not None else None
        if action == "select":
            results, picture = reselect(frame, results, picture)
        for k, r in enumerate(results):
            box_writer.write(index, r.box, r.score, r.state, target=k)
        if video_writer is not None:
            video_writer.write(picture)
        report.rows += 1
        if on_frame:
            on_frame(index, results[0], fps_live)
        if action == "quit":
            return False
        if action == "pause":
            return paused(frame)
        return True

    def restart(frame, box) -> None:
        tracker.init(frame, [box] if several else box)  # several targets: the new box replaces them
        report.reselections += 1

    def reselect(frame, results, picture):
        box = controls.select(frame)
        if box is None:
            return results, picture
        restart(frame, box)
        results = [TrackResult(tuple(float(v) for v in box), 1.0, TRACKING)]
        return results, annotated(frame, results) if annotate else None

    def paused(frame) -> bool:
        while report.pending_signal is None:
            action = key_action(controls.wait_key())
            if action == "quit":
                return False
            if action == "pause":
                return True
            if action == "select":
                box = controls.select(frame)
                if box is not None:
                    restart(frame, box)  # takes effect from the next frame
        report.interrupted = report.pending_signal
        return False

    frames = track_frames(tracker, source, first_box, first_index=first_index, max_frames=max_frames,
                          report=report, stop_on_signal=True)
    with closing(frames):
        started = last = None
        for index, frame, result in frames:
            now = time.perf_counter()
            if started is None:
                started = last = now
            elif now > last:
                dt, last = now - last, now
                fps_live = 1.0 / dt if fps_live == 0.0 else 0.9 * fps_live + 0.1 / dt
            if not emit(index, frame, list(result) if several else [result]):
                report.quit_by_key = report.interrupted is None
                break
            if duration is not None and time.perf_counter() - started >= duration:
                break
    return report
