"""A batch run: skip what an earlier run finished, run the rest, write ``summary.csv``."""
from __future__ import annotations

import csv
import io
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from ..errors import SiamcliError
from ..io.files import write_file_atomically
from ..io.outputs import check_outputs, output
from .executors import BatchHalted, run_local, run_ray
from .manifest import Job
from .worker import STATE_DIR, SUMMARY_COLUMNS, RunOptions, load_done, output_name

SUMMARY = "summary.csv"
_TMP = re.compile(r"^\..+\.(\d+)\.tmp(\.mp4)?$")


@dataclass
class BatchResult:
    """What a run did: the records in manifest order and how many were skipped / run / failed."""

    records: List[Dict[str, Any]]
    skipped: int
    ran: int
    seconds: float
    summary: Path
    frames_tracked: int = 0
    failed: List[Dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(out_dir: Path, *extra: Path) -> int:
    """Delete half-written ``.NAME.PID.tmp`` files (``.NAME.PID.tmp.mp4`` videos) left by processes
    that no longer run, in OUTDIR and the ``extra`` folders."""
    removed = 0
    for folder in (out_dir, out_dir / STATE_DIR, *extra):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            match = _TMP.match(path.name)
            if match and not _alive(int(match.group(1))):
                path.unlink(missing_ok=True)
                removed += 1
    return removed


def write_summary(out_dir: Path, records: List[Dict[str, Any]]) -> Path:
    """``summary.csv``: one row per manifest entry, in manifest order (written whole, then renamed)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(SUMMARY_COLUMNS)
    for r in records:
        shown = {**r, "output": r.get("output") if r.get("status") == "ok" else None}
        writer.writerow(["" if shown.get(c) is None else shown[c] for c in SUMMARY_COLUMNS])
    return write_file_atomically(out_dir / SUMMARY, buf.getvalue().encode())


def run_batch(jobs: List[Job], opts: RunOptions, workers: int = 1, executor: str = "local",
              ray_address: Optional[str] = None, resume: bool = True,
              on_start: Optional[Callable[[int, int], None]] = None,
              on_record: Optional[Callable[[Dict[str, Any]], None]] = None) -> BatchResult:
    """Run ``jobs`` into ``opts.out_dir``.

    ``on_start(to_run, skipped)`` is called once the finished jobs are known;
    ``on_record(record)`` after each job that runs now. With ``resume`` (the
    default) a job whose output an earlier run completed with the same settings
    is not redone; rows the manifest could not parse are recorded as failed.
    """
    out_dir = Path(opts.out_dir)
    if executor not in ("local", "ray"):
        raise SiamcliError(f"unknown executor {executor!r}: use local or ray")
    if executor == "ray" and opts.video_dir:
        raise SiamcliError("--save-video needs --executor local: Ray tasks may run on machines that "
                           "cannot reach the video folder")
    video_dir = Path(opts.video_dir) if opts.video_dir else None
    check_outputs([output("-o", out_dir, folder=True)]
                  + ([output("--save-video", video_dir, folder=True)] if video_dir else []))
    for folder in (out_dir, video_dir):
        try:
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SiamcliError(f"cannot create output folder {folder}: {exc.strerror}") from None
    check_batch_outputs(jobs, opts)
    remove_stale_temporaries(out_dir, *([video_dir] if video_dir else []))

    by_id: Dict[str, Dict[str, Any]] = {}
    todo: List[Job] = []
    skipped = 0
    for job in jobs:
        done = load_done(out_dir, job, opts) if resume else None
        if done is not None:
            by_id[job.id] = done
            skipped += 1
        else:
            todo.append(job)
    runnable = [j for j in todo if not j.error]
    if on_start:
        on_start(len(todo), skipped)

    t0 = time.perf_counter()

    def collect(record: Dict[str, Any]) -> None:
        by_id[record["id"]] = record
        if on_record:
            on_record(record)
        if record.get("halt"):
            raise BatchHalted(record["halt"])

    from .worker import commit, track_job  # row errors: record them without a worker
    halted = None
    try:
        for job in todo:
            if job.error:
                record, _ = track_job(job, opts)
                collect(commit(out_dir, job, opts.fmt, record, [], opts))
        if executor == "ray":
            run_ray(runnable, opts, workers, collect, ray_address)
        else:
            run_local(runnable, opts, workers, collect)
    except BatchHalted as exc:
        halted = str(exc)
    seconds = time.perf_counter() - t0

    records = [by_id.get(j.id) or _not_run(j, opts, halted) for j in jobs]
    try:
        summary = write_summary(out_dir, records)
    except SiamcliError:
        if halted is None:
            raise
        summary = None
    if halted is not None:
        done = sum(r["status"] == "ok" for r in records)
        where = f"summary: {summary}" if summary else "no room for summary.csv either"
        raise SiamcliError(f"{halted}; the batch stopped with {done} of {len(records)} videos done, {where}; "
                           "rerun to go on once there is room")
    frames = sum(int(by_id[j.id].get("frames") or 0) for j in runnable)
    return BatchResult(records=records, skipped=skipped, ran=len(todo), seconds=seconds, summary=summary,
                       frames_tracked=frames, failed=[r for r in records if r["status"] != "ok"])


def _not_run(job: Job, opts: RunOptions, reason: Optional[str]) -> Dict[str, Any]:
    return {"id": job.id, "video": job.video, "frames": 0, "fps": None, "mean_score": None, "status": "failed",
            "error": f"not run: the batch stopped ({reason})", "output": output_name(job.id, opts.fmt),
            "fingerprint": opts.fingerprint(job)}


def check_batch_outputs(jobs: List[Job], opts: RunOptions) -> None:
    """Refuse a run whose files would overwrite a video of the manifest or one another (before any
    video is read)."""
    from .worker import video_path

    out_dir = Path(opts.out_dir)
    outputs = [output("-o", out_dir / SUMMARY)]
    for job in jobs:
        if job.error:
            continue
        outputs.append(output("the trajectory", out_dir / output_name(job.id, opts.fmt)))
        if opts.video_dir:
            outputs.append(output("the video", video_path(opts, job.id)))
    inputs = {j.video for j in jobs if j.video} | {w for j in jobs for w in (j.weights, j.config) if w}
    check_outputs(outputs, sorted(inputs))
