"""Options that several commands take, each declared once: the model, the runtime, the device, the
box file's format, the aspect rate, the frame limit, the progress display. A command that means
something narrower by one of them passes its own help text, never its own declaration."""
from __future__ import annotations

from typing import Callable, Optional

import click

from .catalog import BUNDLED_MODELS, DEFAULT_MODEL
from .errors import quoted
from .engines.choices import ENGINES, PRECISIONS
from .io.writers import FORMATS

#: the bundled models' names as help texts and messages list them
BUNDLED_TEXT = ", ".join(BUNDLED_MODELS)
MODEL_HELP = f"Model name (see `siamcli models`). Default: {DEFAULT_MODEL}, a model bundled with siamcli ({BUNDLED_TEXT})."
CONFIG_HELP = "A pysot / SiamBAN / NanoTrack config.yaml, instead of --model."
WEIGHTS_HELP = ("Checkpoint (.pth state dict or training snapshot). "
                f"Not needed for the bundled models ({BUNDLED_TEXT}): their weights ship with siamcli.")


class ThreadCount(click.ParamType):
    """A thread count from 1 to the cores this process may use: far more threads than cores
    only slow a run down, and thousands of them keep the runtimes busy creating threads for
    minutes before the first frame."""

    name = "integer"

    def convert(self, value, param, ctx):
        from .batch.executors import usable_cores

        if isinstance(value, int):
            count = value
        else:
            try:
                count = int(str(value).strip())
            except ValueError:
                self.fail(f"{quoted(value)} is not a whole number", param, ctx)
        cores = usable_cores()
        if not 1 <= count <= cores:
            self.fail(f"{count} is not between 1 and {cores} (the cores siamcli may use here)", param, ctx)
        return count


THREADS = ThreadCount()


def _apply(options) -> Callable:
    def decorate(fn):
        for option in reversed(options):
            fn = option(fn)
        return fn
    return decorate


def model_options(model_help: str = MODEL_HELP, config_help: str = CONFIG_HELP,
                  weights_help: str = WEIGHTS_HELP) -> Callable:
    """``--model`` / ``-m``, ``--config`` and ``--weights`` / ``-w``."""
    return _apply([
        click.option("--model", "-m", help=model_help),
        click.option("--config", "config", help=config_help),
        click.option("--weights", "-w", help=weights_help),
    ])


def device_option(default: str = "auto") -> Callable:
    return click.option("--device", default=default, show_default=True,
                        help="cpu, cuda (cuda:N), tensorrt (onnx engine), or auto (CUDA when available).")


def engine_option(default: str = "auto", help: str = "Runtime. auto: the fastest among accuracy-verified options, "
                  "measured at the first start on this machine and remembered (see `siamcli cache`).") -> Callable:
    return click.option("--engine", type=click.Choice(ENGINES), default=default, show_default=True, help=help)


THREADS_OPTION = click.option("--threads", type=THREADS,
                              help="Intra-op threads of the runtime (at most the cores siamcli may use).")

#: what picks the runtime: engine, precision, threads, ONNX files, compilation, CUDA graphs
runtime_options = _apply([
    engine_option(),
    click.option("--precision", type=click.Choice(PRECISIONS), default="auto", show_default=True,
                 help="Numeric precision (auto: fp32 unless a reduced one is verified for this model to keep "
                      "mean IoU within 0.01). int8: the files of `siamcli export --int8`, given with --onnx; "
                      "check its accuracy with `siamcli eval`."),
    THREADS_OPTION,
    click.option("--onnx", "onnx_files", nargs=2, type=click.Path(dir_okay=False), metavar="A.onnx B.onnx",
                 help="Run two ONNX files instead of --weights: template.onnx search.onnx (or search_int8.onnx) "
                      "from `siamcli export`, or NanoTrack's backbone.onnx head.onnx."),
    click.option("--compile", "compile_", is_flag=True,
                 help="torch engine: compile the search branch (torch.compile, weights packed once). The first "
                      "frames take seconds to compile, then each frame is faster; needs a C++ compiler."),
    click.option("--cuda-graphs", is_flag=True,
                 help="torch engine on CUDA: replay the crop and network of each frame as one CUDA graph."),
])



def box_format_option(default: Optional[str] = None,
                      help: str = "Box file format: csv (frame,x,y,w,h,score,state), json, mot (MOTChallenge, one "
                                  "track per target) or otb (x,y,w,h lines, one target). Default: from the -o "
                                  "suffix (.json), else csv.") -> Callable:
    return click.option("--format", "fmt", type=click.Choice(FORMATS), default=default,
                        show_default=default is not None, help=help)


def aspect_lr_option(help: str = "How fast the box's aspect (w/h) follows the model, its scale apart: 0 keeps the "
                                 "first box's shape. Default per model (`siamcli models`; the published models "
                                 "move width and height alike).") -> Callable:
    return click.option("--aspect-lr", type=click.FloatRange(0, 1), help=help)


def max_frames_option(help: str = "Stop after this many frames.") -> Callable:
    return click.option("--max-frames", type=click.IntRange(min=1), help=help)


def quiet_option(help: str = "No progress bar.") -> Callable:
    return click.option("--quiet", "-q", is_flag=True, help=help)


QUIET = quiet_option()
