"""``siamcli models``: the models siamcli knows, where their weights come from, and their tracker
settings. A terminal gets an aligned table; a pipe gets one tab-separated line per model after a
header line, whole, for programs to read."""
from __future__ import annotations

from typing import Dict, Iterator, List

import click
from rich import box
from rich.console import Console
from rich.table import Table

#: the columns of the piped listing, in order
COLUMNS = ("model", "weights", "checkpoint", "family", "instance", "score map", "penalty_k", "window", "lr",
           "aspect_lr", "uncertain", "lost", "description")


def model_rows() -> Iterator[Dict[str, str]]:
    """One row of :data:`COLUMNS` per model of the catalog, in its order."""
    from .catalog import MODELS

    for spec in MODELS.values():
        p = spec.params
        yield {"model": spec.name, "weights": "bundled" if spec.bundled else str(spec.published_by),
               "checkpoint": "-" if spec.bundled else str(spec.checkpoint),
               "family": "anchors" if p.family == "rpn" else "points", "instance": str(p.instance_size),
               "score map": f"{p.score_size}x{p.score_size}", "penalty_k": f"{p.penalty_k:.3g}",
               "window": f"{p.window_influence:.3g}", "lr": f"{p.lr:.3g}",
               "aspect_lr": "-" if p.aspect_lr is None else f"{p.aspect_lr:.3g}",
               "uncertain": f"{p.uncertain_threshold:g}", "lost": f"{p.lost_threshold:g}", "description": spec.summary}


def _table(rows: List[Dict[str, str]]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, caption="bundled: the weights ship with siamcli; the others "
                  "run the checkpoint named under their publisher, passed with --weights (Python: weights=)")
    table.add_column("model", no_wrap=True)  # typed back as --model: never cut
    table.add_column("weights", overflow="fold")
    table.add_column("description and tracker settings")
    for row in rows:
        lr = row["lr"] if row["aspect_lr"] == "-" else f"{row['lr']} (aspect {row['aspect_lr']})"
        table.add_row(row["model"],
                      row["weights"] if row["checkpoint"] == "-" else f"{row['weights']}:\n{row['checkpoint']}",
                      f"{row['description']}\n[dim]{row['family']}, search {row['instance']} px, penalty_k "
                      f"{row['penalty_k']}, window {row['window']}, lr {lr}; uncertain under {row['uncertain']}, "
                      f"lost under {row['lost']}[/]")
    return table


@click.command("models")
def models_cmd() -> None:
    """List the models siamcli knows: whether their weights ship with siamcli (bundled) or which
    published checkpoint to pass with --weights, and their tracker settings (the loss thresholds
    included: a frame scoring under "uncertain" is uncertain, under "lost" lost).

    On a terminal the list is a table; piped, it is tab-separated, one model a line after a header.
    """
    rows = list(model_rows())
    console = Console()
    if console.is_terminal:
        console.print(_table(rows))
        return
    for row in ({c: c for c in COLUMNS}, *rows):
        click.echo("\t".join(row[c] for c in COLUMNS))
