"""The per-frame run loop shared by ``siamcli track`` and ``siamcli webcam``.

source -> tracker -> sinks (box file, annotated video, live window), with
keys (select / pause / quit), frame and time limits, SIGINT/SIGTERM turned
into a clean stop, and the reason a stream ended early. The sinks are written
together for each frame with signals held back, so the box file and the video
always hold the same frames.
"""
from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterable, List, Optional, Protocol, Sequence

import numpy as np

from .errors import SiamcliError
from .io.draw import draw_box, draw_status
from .tracking.states import TRACKING
from .tracking.multi import MultiTracker
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


class RunInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; ``signal_name`` says which."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


class SignalGuard:
    """Turns SIGINT and SIGTERM into :class:`RunInterrupted` in the main thread, except inside
    :meth:`held`, where the signal waits until the block ends (so a frame's sinks are written whole)."""

    def __init__(self) -> None:
        self.pending: Optional[str] = None
        self._holding = 0
        self._previous = {}

    def _handler(self, signum, _frame) -> None:
        self.pending = signal.Signals(signum).name
        if not self._holding:
            raise RunInterrupted(self.pending)

    def __enter__(self) -> "SignalGuard":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    @contextmanager
    def held(self):
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1
        if self.pending and not self._holding:
            raise RunInterrupted(self.pending)


@dataclass
class RunReport:
    """How a run went: ``rows`` boxes written (frame 0 included), the last frame index, the time
    spent after the first frame, and why it stopped."""

    rows: int = 0
    last_frame: int = -1
    elapsed: float = 0.0
    #: "SIGINT" / "SIGTERM" when a signal stopped the run
    interrupted: Optional[str] = None
    #: the source's own explanation when it ran out early (damaged file, lost camera)
    stream_message: Optional[str] = None
    quit_by_key: bool = False
    reselections: int = 0
    #: initial boxes that lie mostly outside the first frame (tracked all the same)
    box_warnings: List[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return (self.rows - 1) / self.elapsed if self.elapsed > 0 and self.rows > 1 else 0.0


def outside_warnings(boxes: Sequence[Sequence[float]], frame_shape: Sequence[int], inside: float = 0.5) -> List[str]:
    """A message for each box (x, y, w, h) of which less than ``inside`` of the area lies in the
    frame: most often coordinates meant for another resolution."""
    height, width = frame_shape[:2]
    messages = []
    for x, y, w, h in boxes:
        iw = max(0.0, min(x + w, width) - max(x, 0.0))
        ih = max(0.0, min(y + h, height) - max(y, 0.0))
        share = iw * ih / (w * h)
        if share < inside:
            messages.append(f"box {x:g},{y:g},{w:g},{h:g} lies mostly outside the {width}x{height} first frame "
                            f"({100 * share:.1f} % of it inside); are its coordinates for this source's size?")
    return messages


def run_tracking(
    source,
    tracker,
    box_writer,
    *,
    init_box: Optional[Sequence[float]],
    video_writer=None,
    controls: Optional[Controls] = None,
    max_frames: Optional[int] = None,
    duration: Optional[float] = None,
    label: str = "",
    on_frame: Optional[Callable[[int, TrackResult, float], None]] = None,
    first_index: int = 0,
) -> RunReport:
    """Track through ``source`` (a FrameSource) writing every frame's box to ``box_writer``.

    Without ``init_box`` the first box is drawn through ``controls``. Keys from
    ``controls``: s/space re-select the target on the frame shown, p pauses and
    resumes, q/Esc quit. Stops at the end of the source, after ``max_frames``
    rows, after ``duration`` seconds, on q/Esc, or on SIGINT/SIGTERM (reported in
    the returned :class:`RunReport`; the caller closes the sinks). ``first_index``: the number
    the box file gives the first frame (the source's own index of it, when it starts later).
    """
    report = RunReport()
    frames = iter(source)
    first = next(frames, None)
    if first is None:
        raise SiamcliError("the source delivered no frame to start on")
    if init_box is None:
        init_box = controls.select(first) if controls is not None else None
        if init_box is None:
            raise SiamcliError("no target box was drawn (selection cancelled); pass --init x,y,w,h to skip it")
    several = isinstance(tracker, MultiTracker)
    if several and not isinstance(init_box[0], (list, tuple, np.ndarray)):
        init_box = [init_box]
    tracker.init(first, init_box)
    report.box_warnings = outside_warnings(init_box if several else [init_box], first.shape)
    annotate = video_writer is not None or controls is not None
    fps_live = 0.0

    def as_list(result) -> List[TrackResult]:
        return list(result) if several else [result]

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
        with guard.held():  # a signal arriving here is raised when the block ends, so count inside it
            for k, r in enumerate(results):
                box_writer.write(index, r.box, r.score, r.state, target=k)
            if video_writer is not None:
                video_writer.write(picture)
            report.rows += 1
            report.last_frame = index
        if on_frame:
            on_frame(index, results[0], fps_live)
        if action == "quit":
            return False
        if action == "pause":
            return paused(frame, results)
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

    def paused(frame, results) -> bool:
        while True:
            action = key_action(controls.wait_key())
            if action == "quit":
                return False
            if action == "pause":
                return True
            if action == "select":
                box = controls.select(frame)
                if box is not None:
                    restart(frame, box)  # takes effect from the next frame

    with SignalGuard() as guard:
        t0 = time.perf_counter()
        last = t0
        try:
            boxes = init_box if several else [init_box]
            index = first_index
            going = emit(index, first, [TrackResult(tuple(float(v) for v in b), 1.0, TRACKING) for b in boxes])
            while going:
                if max_frames is not None and report.rows >= max_frames:
                    break
                if duration is not None and time.perf_counter() - t0 >= duration:
                    break
                frame = next(frames, None)
                if frame is None:
                    stop = getattr(source, "stop_message", None)
                    report.stream_message = stop() if stop else None
                    break
                index += 1
                results = as_list(tracker.update(frame))
                now = time.perf_counter()
                dt, last = now - last, now
                fps_live = 1.0 / dt if fps_live == 0.0 and dt > 0 else (0.9 * fps_live + 0.1 / dt if dt > 0 else fps_live)
                going = emit(index, frame, results)
            report.quit_by_key = not going
        except RunInterrupted as exc:
            report.interrupted = exc.signal_name
        report.elapsed = time.perf_counter() - t0
    return report
