#!/usr/bin/env python
"""Write weights/nanotrackv2v3.pth, the checkpoint of the bundled ``nanotrack_v2v3``: the published
NanoTrack v2 and v3 state dicts unchanged, under ``v2.`` and ``v3.`` (siamcli.models.nanotrack.NanoTrackV2V3).

    .venv/bin/python scripts/make_nanotrack_v2v3.py [--v2 weights/nanotrackv2.pth] [--v3 weights/nanotrackv3.pth] [-o weights/nanotrackv2v3.pth]

The output's sha256 goes into weights/manifest.json; the same inputs give the same bytes.
"""
from __future__ import annotations

from pathlib import Path

import click
import torch

from siamcli.models.checkpoint import read_state_dict
from siamcli.models.nanotrack import nanotrack_v2v3

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"


@click.command()
@click.option("--v2", "v2", type=click.Path(dir_okay=False, exists=True), default=str(WEIGHTS / "nanotrackv2.pth"),
              show_default=True)
@click.option("--v3", "v3", type=click.Path(dir_okay=False, exists=True), default=str(WEIGHTS / "nanotrackv3.pth"),
              show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=str(WEIGHTS / "nanotrackv2v3.pth"),
              show_default=True)
def main(v2: str, v3: str, output: str) -> None:
    state = {**{f"v2.{k}": v.cpu() for k, v in read_state_dict(v2).items()},
             **{f"v3.{k}": v.cpu() for k, v in read_state_dict(v3).items()}}
    nanotrack_v2v3().load_state_dict(state, strict=True)  # every key of both networks, nothing else
    torch.save(state, output)
    click.echo(output)


if __name__ == "__main__":
    main()
