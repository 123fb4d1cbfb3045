"""The ``siamcli`` command line: parse, wire, report. No tracking logic lives here."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

from .cli_options import (BUNDLED_TEXT, QUIET, aspect_lr_option, box_format_option, device_option, max_frames_option,
                          model_options, runtime_options)
from .errors import SiamcliError, quoted
from .progress import progress_display

err_console = Console(stderr=True, soft_wrap=True, highlight=False)


def _progress(quiet: bool):
    return progress_display(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[fps]:>6.1f} fps"), TimeRemainingColumn(),
                            console=err_console, quiet=quiet)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="siamcli", prog_name="siamcli")
def cli() -> None:
    """Real-time single-object tracking with Siamese networks (SiamRPN, SiamRPN++, SiamBAN, NanoTrack).

    \b
    Examples:
      siamcli track video.mp4 --model nanotrack_v2 --weights nanotrackv2.pth --init 120,80,40,60 -o boxes.csv
      siamcli track frames/ --config experiments/siamrpn_alex_dwxcorr/config.yaml --weights model.pth
      siamcli eval sequences/ --model siamrpn_alex_dwxcorr --weights model.pth --json results.json
    """


def _output_options(fn):
    """Options shared by `track` and `webcam`: model, weights, first box, outputs, loss handling."""
    options = [
        model_options(),
        click.option("--init", "init_box", metavar="X,Y,W,H", multiple=True,
                     help="First box, 0-based pixels. Repeat it to track several targets in one batched "
                          "network pass (the box file gains a target column). Without it (or --init-file) "
                          "a window opens to draw the box."),
        click.option("--init-file", type=click.Path(dir_okay=False),
                     help="Read the first box from the first line of this file (x,y,w,h; commas, spaces or "
                          "tabs; 0-based pixels unless --one-based)."),
        click.option("--one-based", is_flag=True,
                     help="The first box's x and y count from 1, as in OTB's groundtruth_rect.txt files "
                          "(the boxes written stay 0-based)."),
        click.option("--output", "-o",
                     help="Box file, written frame by frame. Default: <source name>_boxes.<format>"),
        box_format_option(),
        click.option("--save-video", help="Write the frames with the box drawn (.mp4 or .avi)."),
        click.option("--lost-threshold", type=click.FloatRange(0, 1),
                     help="Score below which the target counts as lost (default per model, see docs)."),
        aspect_lr_option(),
        click.option("--redetect", is_flag=True,
                     help="While lost, keep the last confident box and widen the search until the target is "
                          "found (with NanoTrack's published ONNX pair, whose head takes one search size, "
                          "the search does not widen)."),
        device_option(),
        max_frames_option(),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _engine_options(fn):
    """The runtime (:data:`siamcli.cli_options.runtime_options`) and the crop."""
    fn = click.option("--crop", type=click.Choice(["reference", "fast"]), default="reference", show_default=True,
                      help="reference: the published trackers' padded crop; fast: the same inside the frame, one "
                           "warp across its border (a few grey levels apart there, cheaper for large targets).")(fn)
    return runtime_options(fn)


def _first_box(init_box, init_file: Optional[str], one_based: bool = False):
    """The first box (one target), a list of boxes (several ``--init``), or None (draw it); with
    ``one_based`` the boxes' x and y are moved to siamcli's 0-based pixels."""
    from .io.boxes import parse_box, read_box_file

    if init_box and init_file is not None:
        raise SiamcliError("give either --init or --init-file, not both")
    if init_file is not None:
        boxes = [read_box_file(init_file)]
    elif init_box:
        boxes = [parse_box(text) for text in init_box]
    else:
        if one_based:
            raise SiamcliError("--one-based applies to a box given with --init or --init-file")
        return None
    if one_based:
        boxes = [(x - 1, y - 1, w, h) for x, y, w, h in boxes]
    return boxes[0] if len(boxes) == 1 else boxes


def _many_targets(box) -> bool:
    return box is not None and isinstance(box, list)


def _create(model, config, weights, device, engine, precision, threads, onnx_files, crop, compile_=False,
            cuda_graphs=False, settings=None):
    from .api import create_tracker

    return create_tracker(model=model, config=config, weights=weights, device=device, engine=engine,
                          precision=precision, threads=threads, onnx_files=onnx_files or None,
                          compile=compile_, cuda_graphs=cuda_graphs, settings={"crop": crop, **(settings or {})})


def _build_tracker(model, config, weights, device, lost_threshold, redetect, runtime, several=False, aspect_lr=None):
    from .tracking.multi import MultiTracker
    from .tracking.redetect import RedetectingTracker

    if several and redetect:
        raise SiamcliError("--redetect works with one target; give a single --init to use it")
    settings = {name: value for name, value in (("lost_threshold", lost_threshold), ("aspect_lr", aspect_lr))
                if value is not None}
    tracker, spec = _create(model, config, weights, device, settings=settings, **runtime)
    if several:
        return MultiTracker(tracker.engine, tracker.params), spec
    return (RedetectingTracker(tracker) if redetect else tracker), spec


def _default_output(name: str, fmt: Optional[str]) -> Path:
    from .io.writers import WRITERS

    return Path(f"{name or 'track'}_boxes{WRITERS[fmt or 'csv'].suffix}")


def _check_run_outputs(out_path: Path, output_given: bool, save_video: Optional[str], inputs) -> None:
    """Refuse outputs that cannot be written, or that would overwrite an input or each other,
    before a frame is read."""
    from .io.outputs import check_outputs, output
    from .io.writers import check_video_path

    outputs = [output("-o" if output_given else "the box file", out_path)]
    if save_video:
        check_video_path(save_video)
        outputs.append(output("--save-video", save_video))
    check_outputs(outputs, inputs)


def _what_was_kept(boxes, video) -> str:
    """What a run that stopped on an error leaves: '; 12 boxes kept in a.csv, ...'."""
    parts = []
    if boxes.rows and not boxes.failed:
        parts.append(f"{boxes.rows} box{'es' if boxes.rows > 1 else ''} kept in {boxes.path}")
    if video is not None and video.frames and video.path.exists():
        parts.append(f"{video.frames} frame{'s' if video.frames > 1 else ''} in {video.path}")
    return "; " + ", ".join(parts) if parts else ""


def _close_after_error(boxes, video) -> None:
    for sink in (boxes, video):
        if sink is None:
            continue
        try:
            sink.close()
        except SiamcliError:  # the error that stopped the run is the one to report
            pass


def _run_and_report(source, tracker, spec, out_path, fmt, save_video, init_box, *, controls=None,
                    max_frames=None, duration=None, progress_total=None, quiet=False, first_index=0) -> None:
    from .io.writers import AnnotatedVideoWriter, open_box_writer
    from .live import run_tracking

    video = AnnotatedVideoWriter(save_video, source.fps) if save_video else None
    boxes = open_box_writer(out_path, fmt, multi_target=_many_targets(init_box))
    try:
        with _progress(quiet) as bar:
            task = bar.add_task(spec.name, total=progress_total, fps=0.0)
            report = run_tracking(source, tracker, boxes, init_box=init_box, video_writer=video,
                                  controls=controls, max_frames=max_frames, duration=duration, label=spec.name,
                                  first_index=first_index,
                                  on_frame=lambda i, r, fps: bar.update(task, advance=1, fps=fps))
    except SiamcliError as exc:
        _close_after_error(boxes, video)
        raise SiamcliError(f"{exc}{_what_was_kept(boxes, video)}") from None
    except BaseException:
        _close_after_error(boxes, video)
        raise
    boxes.close()
    if video:
        try:
            video.close()
        except SiamcliError as exc:
            raise SiamcliError(f"{exc}{_what_was_kept(boxes, None)}") from None
    outputs = f"boxes: {out_path}" + (f", video: {save_video}" if save_video else "")
    for message in report.box_warnings:
        err_console.print(f"[yellow]warning:[/] {message}", highlight=False)
    if report.stream_message:
        err_console.print(f"[yellow]warning:[/] {report.stream_message}; {report.rows} boxes kept in {out_path}")
    if report.interrupted:
        err_console.print(f"interrupted by {report.interrupted} after frame {report.last_frame}: "
                          f"{report.rows} boxes kept in {out_path}" + (f", video: {save_video}" if save_video else ""))
        sys.exit(143 if report.interrupted == "SIGTERM" else 130)
    err_console.print(f"tracked {report.rows} frames with {spec.name} on {tracker.engine.name}, {report.fps:.1f} fps mean; "
                      f"{outputs}", highlight=False)


def _model_inputs(weights, config, onnx_files, init_file):
    """Files a run reads besides its source: no output may take their place."""
    return [p for p in (weights, config, init_file, *(onnx_files or ())) if p]


@cli.command("track")
@click.argument("source", required=False)
@click.option("--demo", is_flag=True,
              help="Track the sample clip that ships with siamcli (a woman walking across a lawn, 120 frames) "
                   "instead of SOURCE, from her box on its first frame unless --init is given.")
@_output_options
@click.option("--start-frame", type=click.IntRange(min=0), default=0, show_default=True,
              help="Start on this frame (0-based): the first box is drawn or given on it, and the box "
                   "file's frame numbers count from the source's first frame.")
@_engine_options
@QUIET
def track_cmd(source, demo, model, config, weights, init_box, init_file, one_based, output, fmt, save_video,
              lost_threshold, aspect_lr, redetect, device, max_frames, start_frame, quiet, **runtime) -> None:
    """Track one target through SOURCE, a video file or a folder of frames.

    Boxes are written frame by frame (row 0 is the initial box with score 1),
    each with a state: tracking, uncertain or lost. An interrupted run (Ctrl-C,
    SIGTERM) keeps every box so far and a playable video.
    """
    from .io.select import select_box
    from .io.sources import open_source

    box = _first_box(init_box, init_file, one_based)
    if demo:
        from .demo import DEMO_BOX, demo_video

        if source is not None:
            raise SiamcliError("give either SOURCE or --demo, not both")
        source = str(demo_video())
        box = DEMO_BOX if box is None else box
    elif source is None:
        raise SiamcliError("missing SOURCE: give a video file or a folder of frames (or --demo for the sample clip)")
    out_path = Path(output) if output else _default_output(Path(source).stem, fmt)
    _check_run_outputs(out_path, bool(output), save_video,
                       [source, *_model_inputs(weights, config, runtime.get("onnx_files"), init_file)])
    with open_source(source) as frames:
        frames.start_at(start_frame)
        tracker, spec = _build_tracker(model, config, weights, device, lost_threshold, redetect, runtime,
                                       several=_many_targets(box), aspect_lr=aspect_lr)
        total = max(frames.frame_count - start_frame, 0) if frames.frame_count else None
        if max_frames is not None:
            total = min(total, max_frames) if total else max_frames
        _run_and_report(frames, tracker, spec, out_path, fmt, save_video, select_box if box is None else box,
                        max_frames=max_frames, progress_total=total, quiet=quiet, first_index=start_frame)


@cli.command("webcam")
@click.option("--camera", "-c", default="0", show_default=True,
              help="Camera index, or anything OpenCV's VideoCapture opens: a stream URL or a video file.")
@_output_options
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Stop after this many seconds.")
@click.option("--no-display", is_flag=True, help="Run without a window (needs --init or --init-file).")
@_engine_options
def webcam_cmd(camera, model, config, weights, init_box, init_file, one_based, output, fmt, save_video,
               lost_threshold, aspect_lr, redetect, device, max_frames, duration, no_display, **runtime) -> None:
    """Track live from a camera or stream, in a window showing the box, score and fps.

    \b
    Keys: s or space  draw a new target (the tracker restarts on that frame)
          p           pause / resume
          q or Esc    quit
    Boxes go to -o (default webcam_boxes.csv) frame by frame; the first frames a
    camera delivers while warming up are skipped.

    \b
    Examples:
      siamcli webcam -m nanotrack_v2 -w nanotrackv2.pth
      siamcli webcam -c rtsp://host/stream -m nanotrack_v2 -w nanotrackv2.pth --init 300,200,80,80 --no-display
    """
    from .io.sources import open_camera
    from .io.window import LiveWindow, require_display

    box = _first_box(init_box, init_file, one_based)
    if no_display and box is None:
        raise SiamcliError("--no-display needs the first box: pass --init x,y,w,h or --init-file FILE")
    out_path = Path(output) if output else _default_output("webcam", fmt)
    camera_file = [camera] if not str(camera).strip().isdigit() and "://" not in str(camera) else []
    _check_run_outputs(out_path, bool(output), save_video,
                       [*camera_file, *_model_inputs(weights, config, runtime.get("onnx_files"), init_file)])
    if not no_display:
        require_display("run with --no-display and --init x,y,w,h for headless tracking")
    tracker, spec = _build_tracker(model, config, weights, device, lost_threshold, redetect, runtime,
                                   several=_many_targets(box), aspect_lr=aspect_lr)
    with open_camera(camera) as frames:
        if frames.skipped:
            err_console.print(f"skipped {frames.skipped} warm-up frames from {frames.label}")
        window = None if no_display else LiveWindow(f"siamcli {spec.name} - s: select, p: pause, q: quit")
        try:
            _run_and_report(frames, tracker, spec, out_path, fmt, save_video, box, controls=window,
                            max_frames=max_frames, duration=duration, quiet=True)
        finally:
            if window:
                window.close()


def _recorded(spec, tracker, weights, onnx_files):
    """(label, tracker, record): the tracker with what it runs (:mod:`siamcli.eval.provenance`)."""
    from .api import resolve_weights
    from .eval.provenance import tracker_record

    files = list(onnx_files) if onnx_files else [resolve_weights(spec, weights)]
    return spec.name, tracker, tracker_record(spec.name, files, tracker.engine.name, tracker.engine.precision)


def _compare_trackers(entries, device, runtime):
    """(label, tracker, record) for each --compare entry: an OpenCV baseline name, MODEL=WEIGHTS, or
    a model with bundled weights (:data:`siamcli.catalog.BUNDLED_MODELS`)."""
    from .catalog import is_bundled
    from .eval.baselines import BASELINES, baseline_name, create_baseline
    from .eval.provenance import opencv_record

    out = []
    for entry in entries:
        if "=" in entry:
            name, weights = entry.split("=", 1)
            tracker, spec = _create(name, None, weights, device, **runtime)
            out.append(_recorded(spec, tracker, weights, runtime.get("onnx_files")))
        elif entry.lower().removeprefix("opencv_") in BASELINES:
            label = baseline_name(entry.lower().removeprefix("opencv_"))
            out.append((label, create_baseline(entry), opencv_record(label)))
        elif is_bundled(entry):
            tracker, spec = _create(entry, None, None, device, **runtime)
            out.append(_recorded(spec, tracker, None, runtime.get("onnx_files")))
        else:
            raise SiamcliError(f"--compare takes an OpenCV baseline ({', '.join(BASELINES)}), MODEL=WEIGHTS "
                               f"or a bundled model ({BUNDLED_TEXT}), got {quoted(entry)}")
    return out


def _results_table(label, dataset, results, overall) -> Table:
    robust = any(r.runs > 1 for r in results)
    table = Table("sequence", "frames", *(["runs"] if robust else []), "success AUC", "prec@20px", "mean IoU",
                  "succ@0.5", "fps", title=f"{label} on {dataset}")
    for r in results:
        m = r.metrics
        table.add_row(r.name, str(r.frames), *([str(r.runs)] if robust else []), f"{m['success_auc']:.3f}",
                      f"{m['precision_20px']:.3f}", f"{m['mean_iou']:.3f}", f"{m['success_50']:.3f}", f"{r.fps:.1f}")
    table.add_row("overall", str(overall["frames"]), *([str(sum(r.runs for r in results))] if robust else []),
                  f"{overall['success_auc']:.3f}",
                  f"{overall['precision_20px']:.3f}", f"{overall['mean_iou']:.3f}",
                  f"{overall['success_50']:.3f}", f"{overall['fps']:.1f}", style="bold")
    return table


@cli.command("eval")
@click.argument("dataset")
@model_options()
@click.option("--compare", "compare", multiple=True, metavar="TRACKER",
              help="Also run this tracker on the same sequences: an OpenCV baseline (mil, kcf, csrt), "
                   f"MODEL=WEIGHTS, or a bundled model ({BUNDLED_TEXT}). Repeatable.")
@click.option("--report", "report_dir", help="Write success/precision plots, tables and index.html here.")
@device_option()
@click.option("--json", "json_path", help="Also write the table to this JSON file.")
@click.option("--starts", default=1, show_default=True, type=click.IntRange(min=1),
              help="Temporal robustness (OTB's TRE, which uses 20): start this many times per sequence, from "
                   "frames spread evenly over it, each run to the end; figures are the mean over the runs.")
@click.option("--sre", is_flag=True,
              help="Spatial robustness (OTB's SRE): start from 12 perturbed first boxes (shifted by 10 % of "
                   "the size, or scaled by 0.8-1.2) instead of the ground truth; combines with --starts.")
@QUIET
@_engine_options
def eval_cmd(dataset, model, config, weights, compare, report_dir, device, json_path, starts, sre, quiet,
             **runtime) -> None:
    """Score a model on every OTB-style sequence (img/ + groundtruth_rect.txt) under DATASET.

    Prints success AUC (21 IoU thresholds), precision at 20 px, mean IoU,
    success rate at IoU 0.5 and fps (frame decoding included, a few frames
    ahead in a second thread as `track` does) per sequence and overall.
    Frames whose ground truth has no positive size are not scored. One pass
    from the first frame by default; --starts and --sre run OTB's
    robustness evaluations (the "runs" column counts the starts averaged).

    A sequence that cannot be scored (an unreadable ground-truth file, a frame
    that does not decode) is reported on stderr and left out of every table;
    the others are scored, and the exit code is then 1. Ground truth shorter
    than the frames is scored as far as it goes, with a warning.

    \b
    Example:
      siamcli eval seqs/ -m nanotrack_v2 -w nanotrackv2.pth --compare csrt --compare kcf --report report/
      siamcli eval seqs/ -m siamrpn --compare nanotrack_v2=nanotrackv2.pth --starts 10
    """
    from .eval.datasets import GROUNDTRUTH, scan_sequences
    from .eval.runner import robustness_runs, run_length, summarise, track_runs
    from .io.outputs import check_outputs, output

    if report_dir and (starts > 1 or sre):
        raise SiamcliError("--report plots one-pass results: leave out --starts and --sre, or --report")
    sequences, failed = scan_sequences(dataset)
    outputs = [output("--json", json_path)] if json_path else []
    outputs += [output("--report", report_dir, folder=True)] if report_dir else []
    seq_inputs = [p for s in sequences for p in (s.folder, s.folder / GROUNDTRUTH, s.frames[0].parent)]
    check_outputs(outputs, [*seq_inputs, *_model_inputs(weights, config, runtime.get("onnx_files"), None)])
    runs = {}
    for seq in list(sequences):
        try:
            runs[seq.name] = robustness_runs(seq, starts, sre)
        except SiamcliError as exc:
            failed.append((seq.name, str(exc)))
            sequences.remove(seq)
    if not sequences:
        _no_sequence_scored(failed)
    trackers = []
    if model or config or not compare:  # neither: the bundled default model
        tracker, spec = _create(model, config, weights, device, **runtime)
        trackers.append(_recorded(spec, tracker, weights, runtime.get("onnx_files")))
    trackers += _compare_trackers(compare, device, runtime)
    records = {label: record for label, _, record in trackers}
    for seq in sequences:
        if seq.note:
            err_console.print(f"[yellow]warning:[/] sequence {seq.name}: {seq.note}", highlight=False)

    total = sum(run_length(s, r) for s in sequences for r in runs[s.name]) * len(trackers)
    results_by_tracker = {}
    with _progress(quiet) as bar:
        task = bar.add_task("eval", total=total, fps=0.0)
        for label, tracker, _ in trackers:
            results = []
            for seq in sequences:
                if seq.name in dict(failed):
                    continue
                bar.update(task, description=f"{label} {seq.name}")
                try:
                    res = track_runs(tracker, seq, runs[seq.name], on_frame=lambda: bar.advance(task))
                except SiamcliError as exc:  # this sequence only: the others are still scored
                    failed.append((seq.name, str(exc)))
                    continue
                bar.update(task, advance=len(runs[seq.name]), fps=res.fps)
                results.append(res)
            results_by_tracker[label] = results
    bad = dict(failed)
    results_by_tracker = {label: [r for r in results if r.name not in bad]
                          for label, results in results_by_tracker.items()}
    sequences = [s for s in sequences if s.name not in bad]
    if not sequences:
        _no_sequence_scored(failed)

    docs = []
    console = Console(width=120)
    for label, results in results_by_tracker.items():
        overall = summarise(results)
        console.print(_results_table(label, dataset, results, overall))
        docs.append({
            "tracker": label, **records[label],
            "sequences": [{"name": r.name, "frames": r.frames, "runs": r.runs, "fps": r.fps, **r.metrics}
                          for r in results],
            "overall": overall,
        })
    if report_dir:
        from .eval.report import write_report

        index = write_report(results_by_tracker, report_dir, sequences, title=f"One-pass evaluation on {dataset}",
                             records=records)
        err_console.print(f"report: {index}")
    if json_path:
        protocol = {"starts": starts, "sre": sre, "name": "OPE" if starts == 1 and not sre else
                    "+".join(n for n, on in (("TRE", starts > 1), ("SRE", sre)) if on)}
        doc = {"dataset": str(dataset), "protocol": protocol, **docs[0]}
        if len(docs) > 1:
            doc["compared"] = docs[1:]
        if failed:
            doc["failed"] = [{"name": name, "error": reason} for name, reason in failed]
        from .io.files import write_file_atomically

        write_file_atomically(json_path, (json.dumps(doc, indent=2) + "\n").encode())
    for name, reason in failed:
        err_console.print(f"siamcli: error: sequence {name} not scored: {reason}", highlight=False, markup=False)
    if failed:
        sys.exit(1)


def _no_sequence_scored(failed) -> None:
    name, reason = failed[0]
    more = f" (and {len(failed) - 1} more sequences failed)" if len(failed) > 1 else ""
    raise SiamcliError(f"sequence {name} not scored: {reason}{more}")


def _register_extra_commands() -> None:
    from .cli_batch import batch_cmd
    from .cli_bench import bench_cmd
    from .cli_cache import cache_cmd
    from .cli_export import export_cmd
    from .cli_models import models_cmd

    for command in (batch_cmd, bench_cmd, cache_cmd, export_cmd, models_cmd):
        cli.add_command(command)


_register_extra_commands()


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
