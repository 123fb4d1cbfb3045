"""Where the jobs run: worker processes on this machine, or tasks on a Ray cluster.

Both call ``on_record(record)`` in the batch process as each job finishes, in
completion order. Local workers write their own files (OUTDIR is on this
machine); Ray tasks return the rows and the batch process writes them, so only
the inputs need to be readable from every node, at the same path.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from ..errors import SiamcliError
from .manifest import Job
from .worker import RunOptions, commit, output_name, run_job, set_threads, track_job, write_record

OnRecord = Callable[[Dict[str, Any]], None]


class BatchHalted(SiamcliError):
    """Raised by an ``on_record`` callback to stop the batch: the jobs not started are dropped,
    those running finish (and commit or clean up their own files)."""


def usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _failed(job: Job, opts: RunOptions, error: str) -> Dict[str, Any]:
    return {"id": job.id, "video": job.video, "frames": 0, "fps": None, "mean_score": None,
            "status": "failed", "error": " ".join(error.split()), "output": output_name(job.id, opts.fmt),
            "fingerprint": opts.fingerprint(job)}


def _init_local_worker(threads: int) -> None:
    set_threads(threads)


def run_local(jobs: List[Job], opts: RunOptions, workers: int, on_record: OnRecord) -> None:
    """``workers`` spawned processes, each with its own engine(s) and ``opts.threads`` threads."""
    if not jobs:
        return
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context,
                               initializer=_init_local_worker, initargs=(opts.threads,))
    try:
        futures = {pool.submit(run_job, job, opts, os.getpid()): job for job in jobs}
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                job = futures[future]
                try:
                    record = future.result()
                except Exception as exc:  # the worker process died (out of memory, killed, segfault)
                    record = _failed(job, opts, f"worker process failed: {type(exc).__name__}: {exc}")
                    try:
                        write_record(Path(opts.out_dir), record)
                    except SiamcliError:  # the summary still lists it
                        pass
                on_record(record)
    except BatchHalted:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def run_ray(jobs: List[Job], opts: RunOptions, in_flight: int, on_record: OnRecord,
            address: Optional[str] = None) -> None:
    """Ray tasks, at most ``in_flight`` at a time, each asking Ray for ``opts.threads`` CPUs.

    ``address``: an existing cluster (``auto``, ``ray://host:10001``, ``host:6379``);
    None starts a local Ray for this run and stops it afterwards.
    """
    try:
        import ray
    except ImportError:
        raise SiamcliError("--executor ray needs Ray: pip install 'siamcli[ray]'") from None
    if not jobs:
        return
    started_here = not ray.is_initialized()
    if started_here:
        kwargs: Dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        if address:
            kwargs["address"] = address
        else:
            kwargs["num_cpus"] = usable_cores()
        try:
            ray.init(**kwargs)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise SiamcliError(f"cannot start or reach Ray{' at ' + address if address else ''}: {exc}") from None
    try:
        task = ray.remote(num_cpus=opts.threads)(track_job)
        out_dir = Path(opts.out_dir)
        queue = list(jobs)
        running: Dict[Any, Job] = {}
        while queue or running:
            while queue and len(running) < max(1, in_flight):
                job = queue.pop(0)
                running[task.remote(job, opts)] = job
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                job = running.pop(ref)
                try:
                    record, rows = ray.get(ref)
                except Exception as exc:  # task or node failure after Ray's own retries
                    record, rows = _failed(job, opts, f"ray task failed: {type(exc).__name__}: {exc}"), []
                on_record(commit(out_dir, job, opts.fmt, record, rows, opts))
    finally:
        if started_here:
            ray.shutdown()
