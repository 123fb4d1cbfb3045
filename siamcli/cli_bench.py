"""``siamcli bench``: where a frame's time goes, against a baseline run in the same process.

Registered on the main group by :mod:`siamcli.cli`; errors propagate to its
``main`` (one line on stderr, exit code 2).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import click
from rich.console import Console
from rich.table import Table

from .cli_options import device_option, model_options, runtime_options


def _parse_box(text: Optional[str]):
    from .io.boxes import parse_box

    return None if text is None else parse_box(text)


def bench_table(result: dict) -> Table:
    """The stage medians of a :func:`siamcli.bench.bench` result (and its baseline) as a rich table."""
    base = result.get("baseline") or {}
    title = f"{result['model']} on {Path(result['source']).name}: {result['frames']} frames"
    if result.get("rounds", 1) > 1:
        title += f", medians of {result['rounds']} alternated rounds"
    engine = result["engine"]
    if result.get("precision") not in (None, "fp32") and result["precision"] not in engine:  # torch names carry it
        engine = f"{engine} {result['precision']}"
    table = Table("stage (median ms)", engine, title=title)
    has_base = bool(base) and "skipped" not in base
    if has_base:
        table.add_column(base["name"])
    for stage in ("decode", "crop", "network", "post", "write", "total"):
        row = [stage, _fmt(result["stages_ms"].get(stage))]
        if has_base:
            row.append(_fmt(base["stages_ms"].get(stage)))
        table.add_row(*row)
    row = ["outside network", _pct(result.get("outside_network_pct"))]
    if has_base:
        row.append(_pct(base.get("outside_network_pct")))
    table.add_row(*row)
    row = ["end-to-end fps", f"{result['fps']:.1f}"]
    if has_base:
        row.append(f"{base['fps']:.1f}")
    table.add_row(*row, style="bold")
    if result.get("rounds_fps"):
        row = ["fps by round", " / ".join(f"{v:.1f}" for v in result["rounds_fps"])]
        if has_base:
            row.append(" / ".join(f"{v:.1f}" for v in base.get("rounds_fps") or []))
        table.add_row(*row, style="dim")
    if result.get("mean_iou") is not None:
        row = ["mean IoU", f"{result['mean_iou']:.3f}"]
        if has_base:
            row.append(f"{base['mean_iou']:.3f}" if base.get("mean_iou") is not None else "-")
        table.add_row(*row)
    startup = result.get("startup_ms") or {}
    base_startup = base.get("startup_ms") or {}
    for key, label in (("engine", "start: engine built"), ("init", "first frame: init"),
                       ("first_update", "first update")):
        if key in startup:
            row = [label, _fmt(startup[key])]
            if has_base:
                row.append(_fmt(base_startup.get(key)))
            table.add_row(*row, style="dim")
    if has_base and result.get("speedup"):
        table.caption = f"speed-up vs {base['name']}: {result['speedup']:.2f}x"
    elif base.get("skipped"):
        table.caption = f"baseline skipped: {base['skipped']}"
    if result.get("probe_ms"):
        probe = ", ".join(f"{k} {v:.1f} ms" for k, v in result["probe_ms"].items())
        when = " (remembered from an earlier start)" if result.get("probe_remembered") else ""
        table.caption = ((table.caption + "\n" if table.caption else "")
                         + f"auto probe (search branch){when}: {probe}")
    return table


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def _pct(value) -> str:
    return "-" if value is None else f"{value:.1f} %"


@click.command("bench")
@click.argument("source", type=click.Path(exists=True))
@model_options()
@runtime_options
@device_option()
@click.option("--init", "init_box", metavar="X,Y,W,H",
              help="First box for an unannotated video (default: the ground truth, or a centred box).")
@click.option("-n", "--frames", "max_frames", type=click.IntRange(min=2), default=None, help="Use at most N frames.")
@click.option("--warmup", type=click.IntRange(min=0), default=None,
              help="Updates left out of the medians (default 2, fewer on a short source: at least one is timed).")
@click.option("--no-baseline", is_flag=True, help="Skip the baseline run.")
@click.option("--baseline-onnx", nargs=2, type=click.Path(dir_okay=False), default=None,
              metavar="BACKBONE HEAD", help="NanoTrack v1/v2 ONNX pair for the cv2.TrackerNano baseline of NanoTrack "
                                            "models, or of any model with --vs-opencv (default: next to --weights).")
@click.option("--preload", is_flag=True,
              help="Decode every frame into memory first: fps then counts from decoded frames (decode stage ~0).")
@click.option("--vs-opencv", is_flag=True,
              help="Take OpenCV's cv2.TrackerNano as the baseline, whatever the model (NanoTrack v2's ONNX pair from "
                   "--baseline-onnx, or next to --weights), over 3 alternated rounds unless --rounds says otherwise.")
@click.option("--rounds", type=click.IntRange(min=1), default=None,
              help="Run siamcli and the baseline this many times, alternately, over the same frames, and report the "
                   "medians over the rounds.  [default: 1; 3 with --vs-opencv]")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Also write the result as JSON.")
def bench_cmd(source, model, config, weights, engine, precision, device, threads, onnx_files, cuda_graphs, compile_,
              init_box, max_frames, warmup, no_baseline, baseline_onnx, preload, vs_opencv, rounds, json_out) -> None:
    """Time each stage of tracking (decode, crop, network, post-processing, writing) on SOURCE,
    a video or a sequence folder, against a baseline run in the same process.

    \b
    The baseline is OpenCV's cv2.TrackerNano for NanoTrack models (and for any
    model with --vs-opencv), and a plain eager fp32 torch loop on one thread for
    the others.

    \b
    Examples:
      siamcli bench seqs/otb_Crossing -m nanotrack_v2 -w nanotrackv2.pth
      siamcli bench video.mp4 -m nanotrack_v2 -w nanotrackv2.pth --vs-opencv --preload
      siamcli bench video.mp4 -m siamrpn_alex_dwxcorr -w model.pth --engine onnx --init 120,80,40,60 --json r.json
    """
    from .bench import bench
    from .io.files import write_file_atomically
    from .io.outputs import check_outputs, output

    if json_out:
        check_outputs([output("--json", json_out)],
                      [source, weights, config, *(onnx_files or ()), *(baseline_onnx or ())])
    result = bench(model, source, weights=weights, config=config, engine=engine, precision=precision,
                   device=device, threads=threads, onnx_files=onnx_files or None, cuda_graphs=cuda_graphs,
                   compile=compile_,
                   init_box=_parse_box(init_box), max_frames=max_frames, warmup=warmup,
                   baseline=not no_baseline, baseline_onnx=baseline_onnx or None, preload=preload,
                   rounds=rounds or (3 if vs_opencv else 1), vs_opencv=vs_opencv)
    Console().print(bench_table(result))
    if json_out:
        write_file_atomically(json_out, (json.dumps(result, indent=1) + "\n").encode())
