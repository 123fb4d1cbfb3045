"""``siamcli bench`` and ``siamcli export``: click commands for speed work.

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

from .cli_options import CONFIG_HELP, device_option, model_options, runtime_options


def _parse_box(text: Optional[str]):
    from .io.boxes import parse_box

    return None if text is None else parse_box(text)


def bench_table(result: dict) -> Table:
    """The stage medians of a :func:`siamcli.bench.bench` result (and its baseline) as a rich table."""
    base = result.get("baseline") or {}
    title = f"{result['model']} on {Path(result['source']).name}: {result['frames']} frames"
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
                                            "models (default: next to --weights).")
@click.option("--preload", is_flag=True,
              help="Decode every frame into memory first: fps then counts from decoded frames (decode stage ~0).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Also write the result as JSON.")
def bench_cmd(source, model, config, weights, engine, precision, device, threads, onnx_files, cuda_graphs, compile_,
              init_box, max_frames, warmup, no_baseline, baseline_onnx, preload, json_out) -> None:
    """Time each stage of tracking (decode, crop, network, post-processing, writing) on SOURCE,
    a video or a sequence folder, against a baseline run in the same process.

    \b
    The baseline is OpenCV's cv2.TrackerNano for NanoTrack models, and a plain
    eager fp32 torch loop on one thread for the others.

    \b
    Examples:
      siamcli bench seqs/otb_Crossing -m nanotrack_v2 -w nanotrackv2.pth
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
                   baseline=not no_baseline, baseline_onnx=baseline_onnx or None, preload=preload)
    Console().print(bench_table(result))
    if json_out:
        write_file_atomically(json_out, (json.dumps(result, indent=1) + "\n").encode())


@click.command("export")
@click.argument("model", required=False)
@click.option("--config", help=CONFIG_HELP.replace("--model", "MODEL"))
@click.option("-w", "--weights", type=click.Path(dir_okay=False),
              help="Checkpoint (.pth); default: the bundled weights of siamcli's own models.")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Folder for template.onnx and search.onnx.")
@click.option("--int8", "calibrate", metavar="VIDEO", type=click.Path(exists=True),
              help="Also write search_int8.onnx: the search graph's convolutions in int8, calibrated on "
                   "crops from this video file or image folder (measure its accuracy with `siamcli eval --onnx`).")
@click.option("--calibration-crops", type=click.IntRange(min=1), default=64, show_default=True,
              help="Crops drawn for --int8 calibration.")
def export_cmd(model: Optional[str], config: Optional[str], weights: Optional[str], out_dir: str,
               calibrate: Optional[str], calibration_crops: int) -> None:
    """Export MODEL with its weights to ONNX: template.onnx (template patch -> features) and
    search.onnx (search patch + template features -> cls, loc), usable for any target.

    \b
    Example:
      siamcli export nanotrack_v2 -w nanotrackv2.pth -o nanotrack_onnx/
      siamcli track video.mp4 -m nanotrack_v2 --engine onnx --onnx nanotrack_onnx/template.onnx nanotrack_onnx/search.onnx
      siamcli export siamrpn_alex_dwxcorr -w model.pth -o alex/ --int8 video.mp4
    """
    from .api import resolve_spec, resolve_weights
    from .catalog import load_network
    from .export import EXPORT_FILES, export_onnx, write_int8_search
    from .io.outputs import check_outputs, output

    names = [*EXPORT_FILES.values()] + ([EXPORT_FILES["search"].replace(".onnx", "_int8.onnx")] if calibrate else [])
    check_outputs([output("-o", out_dir, folder=True)] + [output("-o", Path(out_dir) / n) for n in names],
                  [weights, config, calibrate])
    spec = resolve_spec(model, config)
    weights = resolve_weights(spec, weights)
    network = load_network(spec, weights)
    paths = export_onnx(network, out_dir, exemplar_size=spec.params.exemplar_size,
                        instance_size=spec.params.instance_size, model_name=spec.name,
                        architecture=spec.architecture)
    if calibrate:
        paths["search_int8"] = write_int8_search(paths["template"], paths["search"], spec.params, calibrate,
                                                 calibration_crops)
    for kind, path in paths.items():
        click.echo(f"{kind}: {path}")


@click.command("cache")
@click.option("--clear", is_flag=True,
              help="Delete what is remembered: the next start measures and exports again.")
def cache_cmd(clear: bool) -> None:
    """What start-up remembers: auto's measured choice per model and machine, and ONNX exports.

    The folder is $SIAMCLI_CACHE_DIR (default ~/.cache/siamcli); SIAMCLI_CACHE_DIR=none turns it off.
    """
    from .engines import startup_cache

    info = startup_cache.summary()
    if info is None:
        click.echo("the start-up cache is off (SIAMCLI_CACHE_DIR=none)")
        return
    if clear:
        click.echo(f"cleared {info['dir']}: {startup_cache.clear()} files")
        return
    table = Table("model", "device", "threads", "auto's choice", "probe (search branch, ms)",
                  title=f"{info['dir']}: {info['exports']} ONNX exports ({info['optimized']} optimized for this "
                        f"CPU), {info['export_bytes'] / 1e6:.0f} MB")
    for entry in info["choices"]:
        probe = ", ".join(f"{k} {v:.1f}" for k, v in (entry.get("probe_ms") or {}).items())
        threads = entry.get("threads")
        table.add_row(str(entry.get("model")), str(entry.get("device", "auto")),
                      "default" if threads is None else str(threads), str(entry.get("choice")), probe)
    if info["unreadable"]:
        table.caption = f"{info['unreadable']}: passed over, measured again at the next start"
    Console().print(table)
