"""Evaluation reports: success and precision plots, a per-sequence table and an HTML page.

The plots follow the one-pass evaluation of the OTB benchmark papers: for each
tracker the success rate (IoU above a threshold, 21 thresholds 0..1) and the
precision (centre error within a threshold, 0..50 px) averaged over
sequences, with the success AUC, and the precision at 20 px, in the legend.
Frames whose ground truth has no positive size are not scored (as in
:mod:`.metrics`).
"""
from __future__ import annotations

import csv
import html
import io
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence as Seq, Union

import numpy as np

from ..errors import SiamcliError
from ..io.files import write_file_atomically
from .metrics import THRESHOLDS, annotated, center_error, iou
from .provenance import weights_text
from .runner import SequenceResult, summarise

PRECISION_THRESHOLDS = np.arange(0, 51, dtype=float)
METRICS = ("success_auc", "precision_20px", "mean_iou", "success_50")
SUCCESS_PNG = "success_plot.png"
PRECISION_PNG = "precision_plot.png"
TABLE_CSV = "per_sequence.csv"
OVERALL_CSV = "overall.csv"
INDEX = "index.html"

Groundtruth = Union[Mapping[str, np.ndarray], Iterable]  # name -> (N, 4), or eval.datasets.Sequence objects


def _gt_by_name(sequences: Groundtruth) -> Dict[str, np.ndarray]:
    if isinstance(sequences, Mapping):
        return {k: np.asarray(v, float) for k, v in sequences.items()}
    return {s.name: np.asarray(s.groundtruth, float) for s in sequences}


def curves(result: SequenceResult, gt: np.ndarray):
    """Success rates over :data:`THRESHOLDS` and precisions over :data:`PRECISION_THRESHOLDS` for one sequence."""
    gt = np.asarray(gt, float)[: len(result.boxes)]
    pred = np.asarray(result.boxes, float)[: len(gt)]
    mask = annotated(gt)
    ov, err = iou(pred[mask], gt[mask]), center_error(pred[mask], gt[mask])
    if not ov.size:
        return np.zeros(len(THRESHOLDS)), np.zeros(len(PRECISION_THRESHOLDS))
    success = (ov[None, :] > THRESHOLDS[:, None]).mean(axis=1)
    precision = (err[None, :] <= PRECISION_THRESHOLDS[:, None]).mean(axis=1)
    return success, precision


def _mean_curves(results: List[SequenceResult], gt: Dict[str, np.ndarray]):
    pairs = []
    for r in results:
        if r.name not in gt:
            raise SiamcliError(f"no ground truth for sequence {r.name} in the report")
        pairs.append(curves(r, gt[r.name]))
    return np.mean([p[0] for p in pairs], axis=0), np.mean([p[1] for p in pairs], axis=0)


def _plot(path: Path, x: np.ndarray, lines: List[tuple], title: str, xlabel: str, ylabel: str,
          legend_title: str) -> None:
    from matplotlib.figure import Figure  # no pyplot: no global state; PNG is drawn by Agg

    fig = Figure(figsize=(6.4, 4.8), dpi=100)
    ax = fig.add_subplot()
    for label, y in lines:
        ax.plot(x, y, linewidth=2, label=label)
    ax.set_xlim(x[0], x[-1])
    ax.set_ylim(0, 1.0)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, linestyle=":")
    ax.legend(loc="lower left" if "Success" in title else "lower right", title=legend_title, fontsize=9)
    fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, format="png")
    write_file_atomically(path, image.getvalue())


def write_report(results_by_tracker: Mapping[str, List[SequenceResult]], out_dir: Union[str, Path],
                 sequences: Groundtruth, title: str = "One-pass evaluation",
                 records: Optional[Mapping[str, Mapping[str, Any]]] = None) -> Path:
    """Write ``success_plot.png``, ``precision_plot.png``, ``per_sequence.csv``, ``overall.csv``
    and ``index.html`` (which shows them) to ``out_dir``; return the path of ``index.html``.

    ``results_by_tracker``: tracker label -> its :class:`SequenceResult` list (from
    :func:`.runner.track_sequence`); ``sequences``: the ground truth, as the
    :class:`.datasets.Sequence` list or a name -> (N, 4) array mapping.
    Trackers are drawn and listed best success AUC first. ``records``: tracker label -> what it
    ran (:func:`.provenance.tracker_record`: model, weights, engine, precision, siamcli's version),
    added to ``overall.csv`` and to the page.
    """
    if not results_by_tracker or not any(results_by_tracker.values()):
        raise SiamcliError("nothing to report: no tracker results")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SiamcliError("--report needs matplotlib: pip install 'siamcli[report]'") from None
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SiamcliError(f"cannot create report folder {out}: {exc.strerror}") from None
    gt = _gt_by_name(sequences)

    overall = {name: summarise(list(res)) for name, res in results_by_tracker.items() if res}
    order = sorted(overall, key=lambda n: -overall[n]["success_auc"])
    mean = {name: _mean_curves(list(results_by_tracker[name]), gt) for name in order}

    _plot(out / SUCCESS_PNG, THRESHOLDS,
          [(f"{n} [{mean[n][0].mean():.3f}]", mean[n][0]) for n in order],
          "Success plots of OPE", "Overlap threshold", "Success rate", "AUC")
    by_precision = sorted(order, key=lambda n: -mean[n][1][20])
    _plot(out / PRECISION_PNG, PRECISION_THRESHOLDS,
          [(f"{n} [{mean[n][1][20]:.3f}]", mean[n][1]) for n in by_precision],
          "Precision plots of OPE", "Location error threshold (px)", "Precision", "at 20 px")

    header = ("tracker", "sequence", "frames", *METRICS, "fps")
    rows = [(n, r.name, r.frames, *(f"{r.metrics[k]:.4f}" for k in METRICS), f"{r.fps:.1f}")
            for n in order for r in results_by_tracker[n]]
    _write_csv(out / TABLE_CSV, header, rows)
    overall_rows = [(n, "overall", overall[n]["frames"], *(f"{overall[n][k]:.4f}" for k in METRICS),
                     f"{overall[n]['fps']:.1f}") for n in order]
    records = records or {}
    ran = [tuple(_ran(records.get(n, {}))) for n in order]
    _write_csv(out / OVERALL_CSV, (*header, *RECORD_COLUMNS), [(*o, *r) for o, r in zip(overall_rows, ran)])

    index = out / INDEX
    ran_rows = [(n, *r[:1], weights_text(records.get(n, {})), *r[3:]) for n, r in zip(order, ran)]
    write_file_atomically(index, _html(title, header, overall_rows, rows, ran_rows).encode("utf-8"))
    return index


#: what each tracker ran, after the figures of ``overall.csv``
RECORD_COLUMNS = ("model", "weights", "weights_sha256", "engine", "precision", "siamcli")


def _ran(record: Mapping[str, Any]) -> List[str]:
    """A record as the :data:`RECORD_COLUMNS` of a table (several weight files joined by spaces)."""
    weights = record.get("weights") or []
    return [str(record.get("model") or ""), " ".join(w["file"] for w in weights),
            " ".join(w["sha256"] for w in weights), str(record.get("engine") or ""),
            str(record.get("precision") or ""), str(record.get("siamcli") or "")]


def _write_csv(path: Path, header: Seq[str], rows: List[Seq]) -> None:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")  # LF, as every file siamcli writes
    writer.writerow(header)
    writer.writerows(rows)
    write_file_atomically(path, text.getvalue().encode())


def _table(header: Seq[str], rows: List[Seq]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "\n".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def _html(title: str, header: Seq[str], overall_rows: List[Seq], rows: List[Seq], ran_rows: List[Seq]) -> str:
    t = html.escape(title)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{t}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; margin-bottom: 2em; }}
th, td {{ border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }}
th:first-child, td:first-child, th:nth-child(2), td:nth-child(2) {{ text-align: left; }}
img {{ max-width: 48%; }}
</style>
</head>
<body>
<h1>{t}</h1>
<p><img src="{SUCCESS_PNG}" alt="success plot"> <img src="{PRECISION_PNG}" alt="precision plot"></p>
<h2>Overall</h2>
<p>Metrics averaged over sequences; fps over all frames (decoding included, a few frames ahead in a second thread).
Success AUC: mean success rate over IoU thresholds 0, 0.05, ..., 1. Precision: centre error within 20 px.</p>
{_table(header, overall_rows)}
<h2>Trackers</h2>
<p>What each tracker ran: its model, the weights files (sha256), the runtime and precision, and siamcli's version.</p>
{_table(("tracker", "model", "weights", "engine", "precision", "siamcli"), ran_rows)}
<h2>Per sequence</h2>
<p>Also in <a href="{TABLE_CSV}">{TABLE_CSV}</a>.</p>
{_table(header, rows)}
</body>
</html>
"""
