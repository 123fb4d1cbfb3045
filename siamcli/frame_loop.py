"""The one frame loop: every command that tracks through a source drives :func:`track_frames`.

::

    source ──frames, decoded ahead in a thread──▶ tracker.init(first frame, box)
                                                  tracker.update(frame) ──▶ (index, frame, result)

``siamcli track`` and ``webcam`` (:mod:`siamcli.live`), batch workers (:mod:`siamcli.batch.worker`),
``eval`` (:mod:`siamcli.eval.runner`), ``bench`` (:mod:`siamcli.bench`), the Python API's
:func:`siamcli.track` and the training validation iterate over it; what each does with a tracked
frame (write a box file, draw, show a window, score, time) is its own.
"""
from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from .errors import SiamcliError
from .io.sources import FrameSource, Prefetcher
from .tracking.multi import MultiTracker
from .tracking.states import TRACKING
from .tracking.tracker import TrackResult

Box = Sequence[float]
#: the first box, or a function that draws it on the first frame (None: cancelled)
FirstBox = Union[Box, Sequence[Box], Callable[[np.ndarray], Optional[Box]]]


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
        self._previous: dict = {}

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
    """How a run went, filled in as :func:`track_frames` goes: frames yielded (the first
    included), the last frame's index, the seconds spent after the first frame, and why it
    stopped. The fields after ``box_warnings`` belong to the sinks of :mod:`siamcli.live`."""

    frames: int = 0
    last_frame: int = -1
    elapsed: float = 0.0
    #: "SIGINT" / "SIGTERM" when a signal stopped the run
    interrupted: Optional[str] = None
    #: the source's own explanation when it ran out early (damaged file, lost camera)
    stream_message: Optional[str] = None
    #: initial boxes that lie mostly outside the first frame (tracked all the same)
    box_warnings: List[str] = field(default_factory=list)
    #: rows written to the box file (:mod:`siamcli.live`)
    rows: int = 0
    quit_by_key: bool = False
    reselections: int = 0
    guard: Optional[SignalGuard] = field(default=None, repr=False, compare=False)

    @property
    def pending_signal(self) -> Optional[str]:
        """The signal that arrived while the consumer holds a frame (``stop_on_signal``): it ends
        the run when the consumer asks for the next frame; one that waits on the user (paused)
        should stop waiting."""
        return self.guard.pending if self.guard is not None else None

    @property
    def fps(self) -> float:
        return (self.frames - 1) / self.elapsed if self.elapsed > 0 and self.frames > 1 else 0.0


def outside_warnings(boxes: Sequence[Box], frame_shape: Sequence[int], inside: float = 0.5) -> List[str]:
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


def _first_results(tracker: Any, box: Any) -> Any:
    """What frame 0 answers: its own box(es), score 1."""
    def given(b: Box) -> TrackResult:
        return TrackResult(tuple(float(v) for v in b), 1.0, TRACKING)  # type: ignore[arg-type]
    return [given(b) for b in box] if isinstance(tracker, MultiTracker) else given(box)


def track_frames(tracker: Any, frames: Iterable[np.ndarray], first_box: FirstBox, *, first_index: int = 0,
                 max_frames: Optional[int] = None, report: Optional[RunReport] = None,
                 stop_on_signal: bool = False) -> Iterator[Tuple[int, np.ndarray, Any]]:
    """Start ``tracker`` on the first frame of ``frames`` with ``first_box`` and track to the end:
    yields ``(index, frame, result)`` per frame, frame 0's result being its box with score 1.

    ``frames``: a :class:`~siamcli.io.sources.FrameSource` (decoded ahead in a thread when it
    allows it: files yes, cameras no) or any iterable of BGR frames. ``tracker``: anything with
    ``init(frame, box)`` and ``update(frame)``; a :class:`~siamcli.tracking.multi.MultiTracker`
    takes a list of boxes and answers a list of results. ``first_box`` may be a function that
    draws the box on the first frame (None from it: cancelled). ``first_index``: the index the
    first frame gets (the source's own, when it starts later). ``max_frames``: stop after that
    many frames, the first included.

    ``report`` (a :class:`RunReport`) is filled in as the run goes: frames, the last index, time
    after the first frame, and the reason a stream ended early. With ``stop_on_signal``, SIGINT and
    SIGTERM end the iteration (``report.interrupted``) instead of raising. A signal that arrives
    while the consumer holds a frame waits until it asks for the next one (``report.pending_signal``
    meanwhile), so that the consumer's outputs of a frame are never cut in half.

    Close the iterator (``contextlib.closing``) when leaving it before its end: that stops the
    decoding thread and gives the signals back.
    """
    report = report if report is not None else RunReport()
    source = frames if isinstance(frames, FrameSource) else None
    ahead = Prefetcher(iter(frames), source.prefetch) if source is not None and source.prefetch else None
    guard = report.guard = SignalGuard() if stop_on_signal else None
    run = _run(tracker, iter(ahead) if ahead is not None else iter(frames), first_box, first_index, max_frames,
               report, source)
    try:
        with guard if guard is not None else nullcontext():
            try:
                for item in run:
                    if guard is None:
                        yield item
                    else:
                        with guard.held():
                            yield item
            except RunInterrupted as exc:
                report.interrupted = exc.signal_name
    finally:
        run.close()
        if ahead is not None:
            ahead.close()


def _run(tracker: Any, it: Iterator[np.ndarray], first_box: FirstBox, index: int, max_frames: Optional[int],
         report: RunReport, source: Optional[FrameSource]) -> Iterator[Tuple[int, np.ndarray, Any]]:
    first = next(it, None)
    if first is None:
        raise SiamcliError("the source delivered no frame to start on")
    box = first_box(first) if callable(first_box) else first_box
    if box is None:
        raise SiamcliError("no target box was drawn (selection cancelled); pass --init x,y,w,h to skip it")
    several = isinstance(tracker, MultiTracker)
    if several and not isinstance(box[0], (list, tuple, np.ndarray)):
        box = [box]
    tracker.init(first, box)
    report.box_warnings = outside_warnings(box if several else [box], first.shape)
    started = time.perf_counter()
    try:
        report.frames, report.last_frame = 1, index
        yield index, first, _first_results(tracker, box)
        while max_frames is None or report.frames < max_frames:
            frame = next(it, None)
            if frame is None:
                report.stream_message = source.stop_message() if source is not None else None
                break
            index += 1
            result = tracker.update(frame)
            report.frames, report.last_frame = report.frames + 1, index
            yield index, frame, result
    finally:
        report.elapsed = time.perf_counter() - started
