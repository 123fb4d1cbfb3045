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
from .executors import run_local, run_ray
from .manifest import Job
from .worker import STATE_DIR, SUMMARY_COLUMNS, RunOptions, load_done, write_record

SUMMARY = "summary.csv"
_TMP = re.compile(r"^\..+\.(\d+)\.tmp$")


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


def remove_stale_temporaries(out_dir: Path) -> int:
    """Delete half-written ``.NAME.PID.tmp`` files left by processes that no longer run."""
    removed = 0
    for folder in (out_dir, out_dir / STATE_DIR):
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
    writer = csv.writer(buf)
    writer.writerow(SUMMARY_COLUMNS)
    for r in records:
        shown = {**r, "output": r.get("output") if r.get("status") == "ok" else None}
        writer.writerow(["" if shown.get(c) is None else shown[c] for c in SUMMARY_COLUMNS])
    final = out_dir / SUMMARY
    tmp = out_dir / f".{SUMMARY}.{os.getpid()}.tmp"
    tmp.write_text(buf.getvalue())
    os.replace(tmp, final)
    return final


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
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SiamcliError(f"cannot create output folder {out_dir}: {exc.strerror}") from None
    if executor not in ("local", "ray"):
        raise SiamcliError(f"unknown executor {executor!r}: use local or ray")
    remove_stale_temporaries(out_dir)

    by_id: Dict[str, Dict[str, Any]] = {}
    todo: List[Job] = []
    skipped = 0
    for job in jobs:
        done = load_done(out_dir, job, opts.fmt) if resume else None
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

    from .worker import track_job  # row errors: record them without a worker
    for job in todo:
        if job.error:
            record, _ = track_job(job, opts)
            write_record(out_dir, record)
            collect(record)
    if executor == "ray":
        run_ray(runnable, opts, workers, collect, ray_address)
    else:
        run_local(runnable, opts, workers, collect)
    seconds = time.perf_counter() - t0

    records = [by_id[j.id] for j in jobs]
    summary = write_summary(out_dir, records)
    frames = sum(int(by_id[j.id].get("frames") or 0) for j in runnable)
    return BatchResult(records=records, skipped=skipped, ran=len(todo), seconds=seconds, summary=summary,
                       frames_tracked=frames, failed=[r for r in records if r["status"] != "ok"])
