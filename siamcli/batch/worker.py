"""Track one job and commit its files: the trajectory and a small sidecar record.

Commit order, which is what makes a batch resumable:

1. the trajectory is written to ``.<id>.<suffix>.<pid>.tmp`` in OUTDIR, flushed
   and fsync'ed, then renamed to ``<id>.<suffix>`` (a rename within one folder
   is atomic, so a final name always holds a whole file);
2. the record (frames, fps, mean score, status, error, the job's fingerprint)
   goes to ``.siamcli-batch/<id>.json`` the same way.

A job counts as done when its record says ``ok``, its fingerprint matches and
its trajectory exists. A crash between the two steps leaves a trajectory
without a record: the job is simply redone.
"""
from __future__ import annotations

import json
import os
import sys
import time
import traceback
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ..errors import SiamcliError
from .manifest import Job

STATE_DIR = ".siamcli-batch"
SUMMARY_COLUMNS = ("id", "video", "frames", "fps", "mean_score", "status", "error", "output")

# -- output formats ---------------------------------------------------------------
# HOOK(formats): the trajectory writers come from siamcli.io.writers (``WRITERS``:
# format name -> writer class with a ``suffix``), the same ones `track --format`
# uses. Where that registry is absent only CSV is offered. Nothing else in the
# batch (tmp + rename, resume) depends on the format.
def writer_classes() -> Dict[str, Any]:
    from ..io import writers

    return dict(getattr(writers, "WRITERS", None) or {"csv": writers.CsvBoxWriter})


def output_name(job_id: str, fmt: str) -> str:
    cls = writer_classes().get(fmt)
    if cls is None:
        raise SiamcliError(f"unknown trajectory format {fmt!r}; use one of {', '.join(writer_classes())}")
    return f"{job_id}{getattr(cls, 'suffix', '.' + fmt)}"


def _open_writer(fmt: str, path: Path):
    return writer_classes()[fmt](path)


@dataclass(frozen=True)
class RunOptions:
    """Settings shared by every job of a batch run."""

    out_dir: str
    fmt: str = "csv"
    device: Optional[str] = "cpu"
    threads: int = 1
    engine: str = "onnx"


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
    from ..io.sources import open_source
    from ..runloop import outside_warnings

    record: Dict[str, Any] = {"id": job.id, "video": job.video, "frames": 0, "fps": None,
                              "mean_score": None, "status": "failed", "error": job.error,
                              "output": output_name(job.id, opts.fmt), "fingerprint": job.fingerprint(opts.fmt)}
    if job.error:
        return record, []
    rows: List[Row] = []
    try:
        set_threads(opts.threads)
        with open_source(job.video) as source:
            tracker, params = _tracker(job.model, job.config, job.weights, opts.device, opts.engine, opts.threads)
            tracker.params = params if job.aspect_lr is None else params.tuned(aspect_lr=job.aspect_lr)
            frames = iter(source)
            first = None
            for index, frame in enumerate(frames):
                if index == job.start_frame:
                    first = frame
                    break
            if first is None:
                raise SiamcliError(f"start_frame {job.start_frame} is past the end of {job.video} "
                                   f"({source.frames_read} frames)")
            tracker.init(first, job.box)
            warnings = outside_warnings([job.box], first.shape)
            rows.append((job.start_frame, tuple(job.box), 1.0, "tracking"))
            t0 = time.perf_counter()
            for index, frame in enumerate(frames, start=job.start_frame + 1):
                result = tracker.update(frame)
                rows.append((index, result.box, result.score, getattr(result, "state", "tracking")))
            elapsed = time.perf_counter() - t0
            if source.ended_early:
                warnings.append(f"decoding stopped after {source.frames_read} of the {source.frame_count} "
                                "frames the header claims (damaged or truncated stream)")
            if warnings:  # the job succeeded: the error column carries them, each marked as a warning
                record["error"] = "; ".join(f"warning: {w}" for w in warnings)
        tracked = len(rows) - 1
        record.update(frames=len(rows), status="ok",
                      fps=round(tracked / elapsed, 2) if tracked and elapsed > 0 else None,
                      mean_score=round(sum(r[2] for r in rows[1:]) / tracked, 6) if tracked else None)
    except SiamcliError as exc:
        record["error"] = str(exc)
        rows = []
    except Exception as exc:  # a bug: keep the batch going, keep the traceback's last line in the record
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        record["error"] = f"internal error: {last}"
        rows = []
    return record, rows


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
    writer = _open_writer(fmt, tmp)
    try:
        for frame, box, score, state in rows:
            writer.write(frame, box, score, state)
    finally:
        writer.close()
    with open(tmp, "rb+") as f:  # on disk before the rename makes it visible
        os.fsync(f.fileno())
    _fsync_replace(tmp, final)
    return final


def record_path(out_dir: Path, job_id: str) -> Path:
    return out_dir / STATE_DIR / f"{job_id}.json"


def write_record(out_dir: Path, record: Dict[str, Any]) -> None:
    final = record_path(out_dir, record["id"])
    final.parent.mkdir(exist_ok=True)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(record, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    _fsync_replace(tmp, final)


def commit(out_dir: Path, job: Job, fmt: str, record: Dict[str, Any], rows: List[Row]) -> Dict[str, Any]:
    """Write the trajectory (when the job succeeded) and then its record."""
    if record["status"] == "ok":
        try:
            write_trajectory(out_dir, job.id, fmt, rows)
        except (SiamcliError, OSError) as exc:
            record = {**record, "status": "failed", "error": f"cannot write output: {exc}"}
    write_record(out_dir, record)
    return record


def run_job(job: Job, opts: RunOptions, parent_pid: Optional[int] = None) -> Dict[str, Any]:
    """Worker entry point for local processes: track, then commit the files in OUTDIR.

    ``parent_pid``: the batch process; if it has died meanwhile (killed), nothing is
    committed, so an orphaned worker cannot race a rerun.
    """
    record, rows = track_job(job, opts)
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)
    return commit(Path(opts.out_dir), job, opts.fmt, record, rows)


def load_done(out_dir: Path, job: Job, fmt: str) -> Optional[Dict[str, Any]]:
    """The record of a job finished by an earlier run with the same settings, or None."""
    try:
        record = json.loads(record_path(out_dir, job.id).read_text())
    except (OSError, ValueError):
        return None
    if (record.get("status") == "ok" and record.get("fingerprint") == job.fingerprint(fmt)
            and (out_dir / output_name(job.id, fmt)).is_file()):
        return record
    return None
