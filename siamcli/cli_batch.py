"""``siamcli batch``: track many videos listed in a manifest (registered on the main group by cli.py)."""
from __future__ import annotations

import time
import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .cli_options import (THREADS, aspect_lr_option, box_format_option, device_option, engine_option,
                          max_frames_option, model_options, quiet_option)
from .errors import SiamcliError
from .progress import progress_display

_console = Console(stderr=True, soft_wrap=True, highlight=False)


@click.command("batch")
@click.argument("manifest")
@click.option("--output", "-o", "out_dir", required=True, help="Folder for the trajectories and summary.csv.")
@model_options(model_help="Model for rows without a model column (see `siamcli models`).",
               config_help="A config.yaml for rows without a model column, instead of --model.",
               weights_help="Checkpoint for rows that use --model / --config.")
@box_format_option(default="csv",
                   help="Trajectory file format, as `track --format` writes it (csv: frame,x,y,w,h,score,...).")
@click.option("--jobs", "-j", type=click.IntRange(min=1),
              help="Videos tracked at once (worker processes, or Ray tasks in flight). Default: the usable cores.")
@click.option("--threads", type=THREADS, default=1, show_default=True,
              help="Compute threads per worker. With 1, trajectories do not depend on --jobs "
                   "(more threads change the order of float sums).")
@engine_option(default="onnx", help="Runtime of every worker (auto measures in each worker, so workers may differ).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: worker processes on this machine; ray: tasks on a Ray cluster (pip install 'siamcli[ray]').")
@click.option("--ray-address", help="Ray cluster to join (auto, ray://host:10001). Default: start a local Ray.")
@device_option(default="cpu")
@aspect_lr_option(help="Learning rate of the box's aspect (w/h) for rows without an aspect_lr column, as "
                       "`track --aspect-lr`. Default: the model's own.")
@max_frames_option(help="Track at most this many frames of each video (its first box's frame included).")
@click.option("--save-video", "video_dir", metavar="DIR",
              help="Also write each video with its box drawn, as DIR/<id>.mp4 (local executor).")
@click.option("--no-resume", is_flag=True, help="Redo every video, even those an earlier run finished.")
@quiet_option(help="No progress display.")
@click.pass_context
def batch_cmd(ctx, manifest, out_dir, model, config, weights, fmt, jobs, threads, engine, executor, ray_address,
              device, aspect_lr, max_frames, video_dir, no_resume, quiet) -> None:
    """Track every video of MANIFEST and write one trajectory per video to OUTDIR.

    MANIFEST is a CSV with a header: video,x,y,w,h (first box, 0-based pixels)
    and optionally model, weights, start_frame, aspect_lr, id. Or a folder of OTB-style
    sequences (img/ + groundtruth_rect.txt), each started on its first box.

    Each trajectory is written under a temporary name and renamed when whole.
    Rerunning the same command skips the videos already done and redoes the
    rest; a video that fails is recorded in OUTDIR/summary.csv with its error
    and the others go on. Exit code 0: all succeeded; 1: some failed; 2: the
    batch could not run or had to stop (a full disk: one line, summary.csv
    kept where it fits, no temporary file left; rerun to go on).

    \b
    Examples:
      siamcli batch videos.csv -o out/          # siamcli's bundled model, one worker per core
      siamcli batch videos.csv -o out/ --model nanotrack_v2 --weights nanotrackv2.pth --jobs 2
      siamcli batch sequences/ -o out/ -m nanotrack_v2 -w nanotrackv2.pth --executor ray
    """
    from .batch import Defaults, RunOptions, read_manifest, run_batch
    from .catalog import is_bundled
    from .batch.executors import usable_cores

    if ray_address and executor != "ray":
        raise SiamcliError("--ray-address needs --executor ray")
    if (model or config) and not weights and not is_bundled(model):
        raise SiamcliError(f"--model/--config {model or config} needs --weights FILE (the checkpoint to load)")
    job_list = read_manifest(manifest, Defaults(model=model, config=config, weights=weights,
                                                aspect_lr=aspect_lr))
    jobs = jobs or usable_cores()
    opts = RunOptions(out_dir=out_dir, fmt=fmt, device=device, threads=threads, engine=engine,
                      max_frames=max_frames, video_dir=video_dir)
    state = {"task": None, "frames": 0, "failed": 0, "t0": time.perf_counter()}

    def on_start(to_run: int, skipped: int) -> None:
        if skipped and not quiet:
            _console.print(f"resuming: {skipped} of {len(job_list)} videos already done in {out_dir}, "
                           f"{to_run} to run")
        state["t0"] = time.perf_counter()
        state["task"] = progress.add_task("batch", total=to_run, fps=0.0, failed=0)

    def on_record(record) -> None:
        state["frames"] += int(record.get("frames") or 0)
        state["failed"] += record["status"] != "ok"
        elapsed = time.perf_counter() - state["t0"]
        progress.update(state["task"], advance=1, failed=state["failed"],
                        fps=state["frames"] / elapsed if elapsed > 0 else 0.0)
        if record.get("halt"):
            return  # the batch stops: its one line says why
        if record["status"] != "ok" and not quiet:
            progress.console.print(f"[red]failed[/] {record['id']}: {record['error']}", markup=True)
        elif record.get("error") and not quiet:  # done, with warnings (each prefixed "warning: ")
            progress.console.print(f"[yellow]{record['id']}[/]: {record['error']}", markup=True)

    with progress_display(TextColumn("[bold]videos"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("{task.fields[failed]} failed"),
                          TextColumn("{task.fields[fps]:>6.1f} frames/s"),
                          TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
                          console=_console, quiet=quiet) as progress:
        result = run_batch(job_list, opts, workers=jobs, executor=executor, ray_address=ray_address,
                           resume=not no_resume, on_start=on_start, on_record=on_record)
    fps = result.frames_tracked / result.seconds if result.seconds > 0 else 0.0
    done = len(result.records) - len(result.failed)
    _console.print(
        f"{done} of {len(result.records)} videos done ({result.skipped} skipped as already complete, "
        f"{result.ran} run, {len(result.failed)} failed) in {result.seconds:.1f} s, {fps:.1f} frames/s; "
        f"summary: {result.summary}"
    )
    if result.failed:
        ctx.exit(1)

