"""The maintainer's tools, run from the project root as ``python -m tools.NAME`` (click commands;
``--help`` on each). They are no part of the installed package (the wheel holds ``siamcli/`` only).

- ``train_default``: retrain siamcli's own models (siamrpnban, siamrpn, siamban) into ``weights/``
  (``make train``; weights/README.md)
- ``tune_tracker``: grid-search a model's tracker settings by tracking ``../shared/data/val``
- ``accuracy_table``: check reduced precisions and runtimes against fp32 and record them in
  ``siamcli/engines/accuracy.json``, which ``--precision auto`` reads
- ``measure_loss``: the score figures behind a model's loss thresholds
- ``random_weights``: random weights of the published shapes for the model-zoo architectures
  (speed measurements without their checkpoints)
- ``make_nanotrack_v2v3``: the bundled ``nanotrack_v2v3`` checkpoint, from NanoTrack v2's and v3's weights

Measurement drivers (benchmarks, GPU runs) live in ``benchmarks/``.
"""
from pathlib import Path

import click

#: the project's root and the shared data beside it (tests and measurements reach it there)
ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


class BadInput(click.ClickException):
    """One line on stderr and exit code 2, as siamcli's commands answer bad input."""

    exit_code = 2
