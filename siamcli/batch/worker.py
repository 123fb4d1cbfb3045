"""Track one job and commit its files: the trajectory and a small sidecar record.

Commit order, which is what makes a batch resumable:

1. the trajectory is written to ``.<id>.<suffix>.<pid>.tmp`` in OUTDIR, flushed
   and fsync'ed, then renamed to ``<id>.<suffix>`` (a rename within one folder
   is atomic, so a final name always holds a whole file);
2. the record (frames, fps, mean score, status, error, the job's fingerprint)
   goes to ``.siamcli-batch/<id>.json`` the same way.

With a video folder (``--save-video``) the annotated video is written under a
temporary name in that folder as the frames come and renamed to ``<id>.mp4``
just before the trajectory. A write that fails removes its temporary file; when
it failed because the file system is full (or read-only, or over quota), the
record says so (``halt``) and the batch stops instead of tracking videos whose
results could not be kept either.

A job counts as done when its record says ``ok``, its fingerprint matches and
its trajectory exists. A crash between the two steps leaves a trajectory
without a record: the job is simply redone.
"""
from __future__ import annotations

import errno
import json
import os
import sys
import traceback
from contextlib import closing
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ..errors import SiamcliError
from ..io.files import WriteError, write_error
from ..io.writers import WRITERS
from .manifest import Job

STATE_DIR = ".siamcli-batch"
VIDEO_SUFFIX = ".mp4"
#: write errors that every later write to the same file system would meet too
HALTING_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)
SUMMARY_COLUMNS = ("id", "video", "frames", "fps", "mean_score", "status", "error", "output")

def output_name(job_id: str, fmt: str) -> str:
    """The trajectory's file name: the writers of `track --format` (:data:`siamcli.io.writers.WRITERS`)."""
    cls = WRITERS.get(fmt)
    if cls is None:
        raise SiamcliError(f"unknown trajectory format {fmt!r}; use one of {', '.join(WRITERS)}")
    return f"{job_id}{cls.suffix}"


@dataclass(frozen=True)
class RunOptions:
    """Settings shared by every job of a batch run."""

    out_dir: str
    fmt: str = "csv"
    device: Optional[str] = "cpu"
    threads: int = 1
    engine: str = "onnx"
    #: track at most this many frames of each video (the first included); None: all
    max_frames: Optional[int] = None
    #: folder for the annotated videos (``<id>.mp4``); None: none are written
    video_dir: Optional[str] = None

    def fingerprint(self, job: Job) -> str:
        return job.fingerprint(self.fmt, self.max_frames)


def video_path(opts: RunOptions, job_id: str) -> Optional[Path]:
    return Path(opts.video_dir) / f"{job_id}{VIDEO_SUFFIX}" if opts.video_dir else None


def _partial_video(opts: RunOptions, job_id: str) -> Optional[Path]:
    # the container's suffix last: the encoder picks the container by it
    return Path(opts.video_dir) / f".{job_id}.{os.getpid()}.tmp{VIDEO_SUFFIX}" if opts.video_dir else None


Row = Tuple[int, Tuple[float, float, float, float], float, str]


# -- tracking ---------------------------------------------------------------------
@lru_cache(maxsize=4)
def _tracker(model: Optional[str], config: Optional[str], weights: Optional[str], device: Optional[str],
             engine: str = "onnx", threads: Optional[int] = None):
    """One engine per worker process and model, built on first use (``init`` resets the target),
    with the model's own tracker params (each job may change its ``aspect_lr``)."""
    from ..api import create_tracker

    tracker, _ = create_tracker(model=model, config=config, weights=weights, device=device, engine=engine,
                                threads=threads)
    return tracker, tracker.params


def set_threads(threads: int) -> None:
    """Give this worker process ``threads`` compute threads (torch and OpenCV).

    Before torch is first imported, OpenMP is also told to sleep rather than spin
    while waiting (unless the environment already says otherwise): on a busy
    machine spinning threads of several workers starve each other, and a worker
    with 2 threads becomes many times slower than one with 1.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    import cv2
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    cv2.setNumThreads(threads)


def track_job(job: Job, opts: RunOptions) -> Tuple[Dict[str, Any], List[Row]]:
    """Track ``job``; return its record and trajectory rows. Never raises for a job's own problem:
    the record then has ``status: failed`` and the error (a bug's record says ``internal error``)."""
    from ..frame_loop import RunReport, track_frames
    from ..io.sources import open_source

    record: Dict[str, Any] = {"id": job.id, "video": job.video, "frames": 0, "fps": None,
                              "mean_score": None, "status": "failed", "error": job.error,
                              "output": output_name(job.id, opts.fmt), "fingerprint": opts.fingerprint(job)}
    if job.error:
        return record, []
    rows: List[Row] = []
    video = None
    try:
        set_threads(opts.threads)
        with open_source(job.video) as source:
            tracker, params = _tracker(job.model, job.config, job.weights, opts.device, opts.engine, opts.threads)
            tracker.params = params if job.aspect_lr is None else params.tuned(aspect_lr=job.aspect_lr)
            source.start_at(job.start_frame)
            if opts.video_dir:
                from ..io.writers import AnnotatedVideoWriter

                video = AnnotatedVideoWriter(_partial_video(opts, job.id), source.fps)
            report = RunReport()
            with closing(track_frames(tracker, source, job.box, first_index=job.start_frame,
                                      max_frames=opts.max_frames, report=report)) as run:
                for index, frame, result in run:
                    rows.append((index, result.box, result.score, result.state))
                    _annotate(video, frame, rows[-1])
            elapsed = report.elapsed
            if video is not None:
                video.close()
            warnings = list(report.box_warnings)
            if source.ended_early and (opts.max_frames is None or len(rows) < opts.max_frames):
                warnings.append(f"decoding stopped after {source.frames_read} of the {source.frame_count} "
                                "frames the header claims (damaged or truncated stream)")
            if warnings:  # the job succeeded: the error column carries them, each marked as a warning
                record["error"] = "; ".join(f"warning: {w}" for w in warnings)
        tracked = len(rows) - 1
        record.update(frames=len(rows), status="ok",
                      fps=round(tracked / elapsed, 2) if tracked and elapsed > 0 else None,
                      mean_score=round(sum(r[2] for r in rows[1:]) / tracked, 6) if tracked else None)
    except WriteError as exc:  # the annotated video
        record = _write_failure(record, exc)
        rows = []
    except SiamcliError as exc:
        record["error"] = str(exc)
        rows = []
    except Exception as exc:  # a bug: keep the batch going, keep the traceback's last line in the record
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        record["error"] = f"internal error: {last}"
        rows = []
    if record["status"] != "ok" and opts.video_dir:
        if video is not None:
            video.discard()
        _remove(_partial_video(opts, job.id))
    return record, rows


def _annotate(video, frame, row: Row) -> None:
    if video is None:
        return
    from ..io.draw import draw_box

    _, box, score, state = row
    video.write(draw_box(frame.copy(), box, score, state=state))


def _remove(path: Optional[Path]) -> None:
    if path is not None:
        try:
            path.unlink()
        except OSError:
            pass


# -- committing files ---------------------------------------------------------------
def _fsync_replace(tmp: Path, final: Path) -> None:
    os.replace(tmp, final)
    try:  # make the rename itself durable
        fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def write_trajectory(out_dir: Path, job_id: str, fmt: str, rows: List[Row]) -> Path:
    final = out_dir / output_name(job_id, fmt)
    tmp = out_dir / f".{final.name}.{os.getpid()}.tmp"
    writer = WRITERS[fmt](tmp)
    try:
        writer.open()
        for frame, box, score, state in rows:
            writer.write(frame, box, score, state)
        writer.close()
        with open(tmp, "rb+") as f:  # on disk before the rename makes it visible
            os.fsync(f.fileno())
        _fsync_replace(tmp, final)
    except BaseException as exc:
        try:
            writer.close()
        except SiamcliError:  # the first error is the one to report
            pass
        _remove(tmp)
        code = getattr(exc, "errno", None) if isinstance(exc, (OSError, WriteError)) else None
        if code:  # named by the file it was for, not the temporary one now gone
            raise write_error(final, OSError(code, os.strerror(code))) from None
        raise
    return final


def record_path(out_dir: Path, job_id: str) -> Path:
    return out_dir / STATE_DIR / f"{job_id}.json"


def write_record(out_dir: Path, record: Dict[str, Any]) -> None:
    """The job's record, whole or not at all (raises :class:`WriteError`, the temporary file removed)."""
    final = record_path(out_dir, record["id"])
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    try:
        final.parent.mkdir(exist_ok=True)
        with open(tmp, "w") as f:
            json.dump({k: v for k, v in record.items() if k != "halt"}, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        _fsync_replace(tmp, final)
    except OSError as exc:
        _remove(tmp)
        raise write_error(final, exc) from None
    except BaseException:
        _remove(tmp)
        raise


def _write_failure(record: Dict[str, Any], exc: Exception) -> Dict[str, Any]:
    """``record`` as failed by a write (an OSError or a :class:`WriteError`), with ``halt`` set
    when no later write to the same file system could succeed either."""
    message = str(exc) if isinstance(exc, SiamcliError) else str(write_error(exc.filename or record["id"], exc))
    failed = {**record, "status": "failed", "error": message}
    if getattr(exc, "errno", None) in HALTING_ERRORS:
        failed["halt"] = message
    return failed


def commit(out_dir: Path, job: Job, fmt: str, record: Dict[str, Any], rows: List[Row],
           opts: Optional[RunOptions] = None) -> Dict[str, Any]:
    """Write the trajectory (when the job succeeded, after its video) and then its record. Never
    raises for a failed write: the returned record says what failed."""
    partial, video = (_partial_video(opts, job.id), video_path(opts, job.id)) if opts else (None, None)
    if record["status"] == "ok":
        try:
            if partial is not None:
                os.replace(partial, video)
            write_trajectory(out_dir, job.id, fmt, rows)
        except (SiamcliError, OSError) as exc:
            record = _write_failure(record, exc)
    _remove(partial)
    try:
        write_record(out_dir, record)
    except WriteError as exc:
        record = _write_failure(record, exc)
    return record


def run_job(job: Job, opts: RunOptions, parent_pid: Optional[int] = None) -> Dict[str, Any]:
    """Worker entry point for local processes: track, then commit the files in OUTDIR.

    ``parent_pid``: the batch process; if it has died meanwhile (killed), nothing is
    committed, so an orphaned worker cannot race a rerun.
    """
    record, rows = track_job(job, opts)
    if parent_pid is not None and os.getppid() != parent_pid:
        _remove(_partial_video(opts, job.id))
        os._exit(1)
    return commit(Path(opts.out_dir), job, opts.fmt, record, rows, opts)


def load_done(out_dir: Path, job: Job, opts: RunOptions) -> Optional[Dict[str, Any]]:
    """The record of a job finished by an earlier run with the same settings (and its video,
    when videos are asked for), or None."""
    try:
        record = json.loads(record_path(out_dir, job.id).read_text())
    except (OSError, ValueError):
        return None
    video = video_path(opts, job.id)
    if (record.get("status") == "ok" and record.get("fingerprint") == opts.fingerprint(job)
            and (out_dir / output_name(job.id, opts.fmt)).is_file() and (video is None or video.is_file())):
        return record
    return None
