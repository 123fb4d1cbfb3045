"""Batch tracking: many videos from a manifest, on local worker processes or a Ray cluster.

``read_manifest`` turns a CSV (or a folder of OTB-style sequences) into
:class:`Job` s; ``run_batch`` skips the jobs an earlier run finished, runs the
rest and writes one trajectory per video plus ``summary.csv``.
"""
from .manifest import Defaults, Job, read_manifest
from .run import BatchResult, run_batch
from .worker import RunOptions

__all__ = ["Defaults", "Job", "read_manifest", "BatchResult", "run_batch", "RunOptions"]
