"""The ``siamcli`` command line: parse, wire, report. No tracking logic lives here."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Optional

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from . import __version__
from .errors import SiamcliError

err_console = Console(stderr=True, soft_wrap=True, highlight=False)
MODEL_HELP = "Model name (see `siamcli models`)."
CONFIG_HELP = "A pysot / SiamBAN / NanoTrack config.yaml, instead of --model."
WEIGHTS_HELP = "Checkpoint (.pth state dict or training snapshot)."
DEVICE_HELP = "cpu, cuda, or auto (CUDA when available)."


def _progress(total: Optional[int], quiet: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[fps]:>6.1f} fps"),
        TimeRemainingColumn(),
        console=err_console,
        disable=quiet,
        transient=False,
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="siamcli")
def cli() -> None:
    """Real-time single-object tracking with Siamese networks (SiamRPN, SiamRPN++, SiamBAN, NanoTrack).

    \b
    Examples:
      siamcli track video.mp4 --model nanotrack_v2 --weights nanotrackv2.pth --init 120,80,40,60 -o boxes.csv
      siamcli track frames/ --config experiments/siamrpn_alex_dwxcorr/config.yaml --weights model.pth
      siamcli eval sequences/ --model siamrpn_alex_dwxcorr --weights model.pth --json results.json
    """


@cli.command("models")
def models_cmd() -> None:
    """List the models siamcli knows, with their tracker settings."""
    from .catalog import MODELS

    table = Table("model", "family", "instance", "score map", "penalty_k", "window", "lr", "description")
    for spec in MODELS.values():
        p = spec.params
        table.add_row(spec.name, "anchors" if p.family == "rpn" else "points", str(p.instance_size),
                      f"{p.score_size}x{p.score_size}", f"{p.penalty_k:.3g}", f"{p.window_influence:.3g}",
                      f"{p.lr:.3g}", spec.summary)
    Console().print(table)


@cli.command("track")
@click.argument("source")
@click.option("--model", "-m", help=MODEL_HELP)
@click.option("--config", "config", help=CONFIG_HELP)
@click.option("--weights", "-w", help=WEIGHTS_HELP)
@click.option("--init", "init_box", metavar="X,Y,W,H",
              help="First-frame box, 0-based pixels. Without it a window opens to draw the box.")
@click.option("--output", "-o", help="Box CSV (frame,x,y,w,h,score). Default: <source name>_boxes.csv")
@click.option("--save-video", help="Write the frames with the box drawn (.mp4 or .avi).")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--max-frames", type=click.IntRange(min=1), help="Stop after this many frames.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def track_cmd(source, model, config, weights, init_box, output, save_video, device, max_frames, quiet) -> None:
    """Track one target through SOURCE, a video file or a folder of frames.

    Boxes are written frame by frame to the CSV (row 0 is the initial box with
    score 1), so an interrupted run keeps every box so far.
    """
    from .api import create_tracker
    from .io.boxes import parse_box
    from .io.draw import draw_box
    from .io.select import select_box
    from .io.sources import open_source
    from .io.writers import AnnotatedVideoWriter, CsvBoxWriter

    box = parse_box(init_box) if init_box is not None else None
    with open_source(source) as frames:
        tracker, spec = create_tracker(model=model, config=config, weights=weights, device=device)
        it = iter(frames)
        first = next(it)
        if box is None:
            box = select_box(first)
        tracker.init(first, box)
        out_path = Path(output) if output else Path(f"{Path(source).stem or 'track'}_boxes.csv")
        video = AnnotatedVideoWriter(save_video, frames.fps) if save_video else None
        done = 0
        t0 = time.perf_counter()
        try:
            with CsvBoxWriter(out_path) as csv_out, _progress(frames.frame_count, quiet) as bar:
                total = frames.frame_count
                if max_frames is not None:
                    total = min(total, max_frames) if total else max_frames
                task = bar.add_task(spec.name, total=total, fps=0.0)
                csv_out.write(0, box, 1.0)
                if video:
                    video.write(draw_box(first.copy(), box, 1.0))
                bar.advance(task)
                for index, frame in enumerate(it, start=1):
                    if max_frames is not None and index >= max_frames:
                        break
                    result = tracker.update(frame)
                    csv_out.write(index, result.box, result.score)
                    if video:
                        video.write(draw_box(frame, result.box, result.score))
                    done += 1
                    elapsed = time.perf_counter() - t0
                    bar.update(task, advance=1, fps=done / elapsed if elapsed > 0 else 0.0)
        except KeyboardInterrupt:
            err_console.print(f"interrupted after frame {done}: {done + 1} boxes kept in {out_path}")
            sys.exit(130)
        finally:
            if video:
                video.close()
        elapsed = time.perf_counter() - t0
        if frames.ended_early and max_frames is None:
            err_console.print(
                f"[yellow]warning:[/] {source} stopped decoding after {frames.frames_read} of the "
                f"{frames.frame_count} frames its header claims (damaged or truncated stream)"
            )
    fps = done / elapsed if elapsed > 0 and done else 0.0
    outputs = f"boxes: {out_path}" + (f", video: {save_video}" if save_video else "")
    err_console.print(f"tracked {done + 1} frames with {spec.name}, {fps:.1f} fps mean; {outputs}",
                      highlight=False)


@cli.command("eval")
@click.argument("dataset")
@click.option("--model", "-m", help=MODEL_HELP)
@click.option("--config", "config", help=CONFIG_HELP)
@click.option("--weights", "-w", help=WEIGHTS_HELP)
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--json", "json_path", help="Also write the table to this JSON file.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def eval_cmd(dataset, model, config, weights, device, json_path, quiet) -> None:
    """Score a model on every OTB-style sequence (img/ + groundtruth_rect.txt) under DATASET.

    Prints success AUC (21 IoU thresholds), precision at 20 px, mean IoU,
    success rate at IoU 0.5 and fps (frame decoding included) per sequence and
    overall. Frames whose ground truth has no positive size are not scored.
    """
    from .api import create_tracker
    from .eval.datasets import find_sequences
    from .eval.runner import summarise, track_sequence

    sequences = find_sequences(dataset)
    tracker, spec = create_tracker(model=model, config=config, weights=weights, device=device)
    results = []
    with _progress(sum(len(s) for s in sequences), quiet) as bar:
        task = bar.add_task(spec.name, total=sum(len(s) for s in sequences), fps=0.0)
        for seq in sequences:
            bar.update(task, description=f"{spec.name} {seq.name}")
            res = track_sequence(tracker, seq, on_frame=lambda: bar.advance(task))
            bar.update(task, advance=1, fps=res.fps)
            results.append(res)
    overall = summarise(results)

    table = Table("sequence", "frames", "success AUC", "prec@20px", "mean IoU", "succ@0.5", "fps",
                  title=f"{spec.name} on {dataset}")
    for r in results:
        m = r.metrics
        table.add_row(r.name, str(r.frames), f"{m['success_auc']:.3f}", f"{m['precision_20px']:.3f}",
                      f"{m['mean_iou']:.3f}", f"{m['success_50']:.3f}", f"{r.fps:.1f}")
    table.add_row("overall", str(overall["frames"]), f"{overall['success_auc']:.3f}",
                  f"{overall['precision_20px']:.3f}", f"{overall['mean_iou']:.3f}",
                  f"{overall['success_50']:.3f}", f"{overall['fps']:.1f}", style="bold")
    Console(width=120).print(table)
    if json_path:
        doc = {
            "model": spec.name,
            "weights": str(weights),
            "dataset": str(dataset),
            "sequences": [{"name": r.name, "frames": r.frames, "fps": r.fps, **r.metrics} for r in results],
            "overall": overall,
        }
        try:
            Path(json_path).write_text(json.dumps(doc, indent=2) + "\n")
        except OSError as exc:
            raise SiamcliError(f"cannot write {json_path}: {exc.strerror}") from None


def main(argv=None) -> None:
    """Entry point: user errors become one line on stderr and exit code 2."""
    try:
        rv = cli.main(args=argv, prog_name="siamcli", standalone_mode=False)
    except SiamcliError as exc:
        err_console.print(f"siamcli: error: {exc}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(2)
    except click.exceptions.Abort:
        err_console.print("siamcli: interrupted")
        sys.exit(130)
    except click.ClickException as exc:
        err_console.print(f"siamcli: error: {exc.format_message()}", highlight=False, markup=False,
                          soft_wrap=True)
        sys.exit(exc.exit_code)
    if isinstance(rv, int) and rv:
        sys.exit(rv)


if __name__ == "__main__":
    main()
