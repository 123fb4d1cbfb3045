"""Training of siamcli's default models: a frozen ImageNet backbone, a trained neck and head.

The backbone (EfficientNet-Lite0 to stride 16) stays frozen, so its features
of every sampled pair are computed once and kept (``build_cache``, half
precision, written in chunks so an interrupted run resumes); the neck and the
correlation head are then trained on them for several epochs
(``train_head``, checkpointed after every epoch and resumed from the last).
Everything random comes from one seed.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, NamedTuple, Optional

import numpy as np
import torch

from ..models.lite import STRIDE, LiteSiamese
from .data import DATA_VERSION, PairSampler
from .objectives import BANTargets, RPNTargets, distill_losses
from .teacher import Teacher

#: score-map side of the lite models: 16 - 6 + 1 search positions
SCORE_SIZE = 11
CHUNK = 1024

Report = Callable[[str, int, int, Dict[str, float]], None]


def _noop(stage: str, done: int, total: int, info: Dict[str, float]) -> None:
    pass


@dataclass
class FeatureCache:
    """Backbone features of sampled pairs: ``z`` (N,C,8,8) and ``x`` (N,C,16,16) fp16 (C = 112 for block 10),
    ``boxes`` (N,4) target corners in search-patch pixels, ``negative`` (N,) bool, ``prior`` (N,2) the tracker's size estimate
    in search-patch pixels (what the lite models' boxes are relative to)."""

    z: torch.Tensor
    x: torch.Tensor
    boxes: torch.Tensor
    negative: torch.Tensor
    kinds: List[str]
    prior: torch.Tensor
    #: a teacher's target probability (N, S*S) and boxes (N, 4, S*S) at the score-map points
    #: (:mod:`siamcli.training.teacher`), when the cache was built with one
    teacher_prob: Optional[torch.Tensor] = None
    teacher_box: Optional[torch.Tensor] = None
    #: seconds spent drawing and encoding the chunks, as each chunk recorded when it was made
    #: (so a resumed run still reports the recipe's cost); None if a chunk predates the record
    seconds: Optional[float] = None

    def __len__(self) -> int:
        return len(self.boxes)


class _Features(torch.nn.Module):
    def __init__(self, model: LiteSiamese) -> None:
        super().__init__()
        self.model = model

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.model.features(img)


def feature_runner(model: LiteSiamese, threads: Optional[int] = None) -> Callable[[np.ndarray], torch.Tensor]:
    """Backbone features of an (N, H, W, 3) uint8 RGB batch, through onnxruntime (several
    times faster than eager torch on a CPU); eager torch if the export is unavailable."""
    try:
        import onnxruntime as ort

        from ..engines.onnx_export import export_graph

        graph = export_graph(_Features(model).eval(), (torch.zeros(1, 3, 127, 127),), ["img"], ["feat"],
                             {"img": {0: "n", 2: "h", 3: "w"}})
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        session = ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])

        def run(batch: np.ndarray) -> torch.Tensor:
            img = np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32)
            return torch.from_numpy(session.run(None, {"img": img})[0])

        return run
    except Exception:  # no onnx exporter here: the same features, slower
        def run_torch(batch: np.ndarray) -> torch.Tensor:
            with torch.inference_mode():
                return model.features(torch.from_numpy(batch).permute(0, 3, 1, 2).float())

        return run_torch


def _crop_batches(pairs: list, batch: int = 32):
    """(templates, searches) of ``pairs``, ``batch`` pairs at a time, as stacked arrays."""
    for i in range(0, len(pairs), batch):
        part = pairs[i:i + batch]
        yield np.stack([p.template for p in part]), np.stack([p.search for p in part])


def _chunk_features(features: Callable[[np.ndarray], torch.Tensor], pairs: list) -> dict:
    zs, xs, boxes, negs, kinds, prior = [], [], [], [], [], []
    for templates, searches in _crop_batches(pairs):
        zs.append(features(templates).half())
        xs.append(features(searches).half())
    for p in pairs:
        boxes.append(p.box)
        negs.append(p.negative)
        kinds.append(p.kind)
        prior.append(p.prior)
    return {"z": torch.cat(zs), "x": torch.cat(xs), "boxes": torch.from_numpy(np.stack(boxes)).float(),
            "negative": torch.tensor(negs), "kinds": kinds,
            "prior": torch.from_numpy(np.stack(prior)).float()}


def _chunk_teacher(teacher: Teacher, pairs: list) -> dict:
    outs = [teacher(templates, searches) for templates, searches in _crop_batches(pairs)]
    return {k: torch.cat([o[k] for o in outs]) for k in ("prob", "box")}


def _save(part: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(part, tmp)
    tmp.replace(path)


def build_cache(model: LiteSiamese, sampler_factory: Callable[[int], PairSampler], count: int,
                work: Path, seed: int, report: Report = _noop, tag: str = "",
                teacher: Optional[Teacher] = None, teacher_tag: str = "") -> FeatureCache:
    """Features of ``count`` pairs, in chunks of :data:`CHUNK` saved under ``work`` (``tag`` names
    sampler settings that differ from the defaults, so their chunks are kept apart).

    Chunk ``i`` is drawn by its own sampler seeded ``(seed, i)``, so chunks
    already on disk are reused as they are and the result does not depend on
    where an earlier run stopped. With a ``teacher``, its outputs on the same
    pairs are cached beside them (``teacher_tag`` names it); a chunk whose
    features are on disk but not the teacher's is drawn again for it.
    """
    work.mkdir(parents=True, exist_ok=True)
    features = None
    chunks = []
    n_chunks = math.ceil(count / CHUNK)
    start = time.perf_counter()
    for i in range(n_chunks):
        path = work / f"features_d{DATA_VERSION}{tag}_s{seed}_{i:04d}.pt"
        size = min(CHUNK, count - i * CHUNK)
        taught = work / f"teacher_{teacher_tag}_d{DATA_VERSION}{tag}_s{seed}_{i:04d}.pt"
        pairs = None
        if path.is_file():
            part = torch.load(path, weights_only=True)
        else:
            made = time.perf_counter()
            features = features or feature_runner(model)
            pairs = _draw(sampler_factory(seed * 100003 + i), size)
            part = _chunk_features(features, pairs)
            part["seconds"] = time.perf_counter() - made
            _save(part, path)
        if teacher is not None:
            if taught.is_file():
                extra = torch.load(taught, weights_only=True)
            else:
                made = time.perf_counter()
                pairs = pairs or _draw(sampler_factory(seed * 100003 + i), size)
                if not torch.equal(torch.from_numpy(np.stack([p.box for p in pairs])).float(), part["boxes"]):
                    raise RuntimeError(f"{path} was drawn by another sampler: remove it")
                extra = _chunk_teacher(teacher, pairs)
                extra["seconds"] = time.perf_counter() - made
                _save(extra, taught)
            part = {**part, "teacher_prob": extra["prob"], "teacher_box": extra["box"],
                    "seconds": sum_or_none(part.get("seconds"), extra.get("seconds"))}
        chunks.append(part)
        done = min(count, (i + 1) * CHUNK)
        report("features", done, count, {"pairs/s": done / max(time.perf_counter() - start, 1e-9)})
    return FeatureCache(
        z=torch.cat([c["z"] for c in chunks]), x=torch.cat([c["x"] for c in chunks]),
        boxes=torch.cat([c["boxes"] for c in chunks]), negative=torch.cat([c["negative"] for c in chunks]),
        kinds=[k for c in chunks for k in c["kinds"]], prior=torch.cat([c["prior"] for c in chunks]),
        teacher_prob=torch.cat([c["teacher_prob"] for c in chunks]) if teacher is not None else None,
        teacher_box=torch.cat([c["teacher_box"] for c in chunks]) if teacher is not None else None,
        seconds=sum_or_none(*(c.get("seconds") for c in chunks)),
    )


def sum_or_none(*seconds: Optional[float]) -> Optional[float]:
    """The sum, or None if any term is unknown."""
    return None if any(s is None for s in seconds) else float(sum(seconds))


def _draw(sampler: PairSampler, count: int) -> list:
    return [sampler.sample() for _ in range(count)]


def targets_for(family: str):
    if family == "rpn":
        return RPNTargets(STRIDE, SCORE_SIZE)
    return BANTargets(STRIDE, SCORE_SIZE)


def trainable_parameters(model: LiteSiamese):
    return list(model.neck.parameters()) + list(model.head.parameters())


class HeadRun(NamedTuple):
    """What :func:`train_head` returns: the last epoch's mean losses, the training seconds and,
    with a validation cache, each epoch's label losses on it."""

    losses: Dict[str, float]
    seconds: Optional[float]
    validation: List[Dict[str, float]] = []


def _forward_losses(model: LiteSiamese, targets, cache: FeatureCache, idx: torch.Tensor,
                    gen: torch.Generator):
    """The network's maps on the cached pairs ``idx`` and their label losses: ``(cls, loc,
    cls_loss, loc_loss)``, one definition for training and validation."""
    labels, goal = targets.assign(cache.boxes[idx], cache.negative[idx], gen, cache.prior[idx])
    zf = model.template_from_features(cache.z[idx].float())
    xf = model.search_from_features(cache.x[idx].float())
    cls, loc = model.correlate(zf, xf)
    cls_loss, loc_loss = targets.loss(cls, loc, labels, goal)
    return cls, loc, cls_loss, loc_loss


@torch.no_grad()
def validation_losses(model: LiteSiamese, cache: FeatureCache, batch: int = 256, seed: int = 0) -> Dict[str, float]:
    """Mean label losses (``cls``, ``loc``) of ``model`` on a cache of held-out pairs. The labels'
    random sampling (SiamRPN's) is drawn from ``seed``, so epochs and runs compare alike."""
    targets = targets_for(model.family)
    gen = torch.Generator().manual_seed(seed)
    modes = {m: m.training for m in model.modules()}
    model.eval()
    sums, count = {"cls": 0.0, "loc": 0.0}, 0
    for start in range(0, len(cache), batch):
        idx = torch.arange(start, min(start + batch, len(cache)))
        _, _, cls_loss, loc_loss = _forward_losses(model, targets, cache, idx, gen)
        sums["cls"] += float(cls_loss) * len(idx)
        sums["loc"] += float(loc_loss) * len(idx)
        count += len(idx)
    for module, mode in modes.items():
        module.train(mode)
    return {k: v / max(count, 1) for k, v in sums.items()}


def train_head(model: LiteSiamese, cache: FeatureCache, epochs: int, batch: int, lr: float, seed: int,
               checkpoint: Path, report: Report = _noop, weight_decay: float = 1e-4,
               stop_after: Optional[int] = None, distill: float = 0.0, distill_loc: float = 0.0,
               val_cache: Optional[FeatureCache] = None) -> "HeadRun":
    """Train ``model``'s neck and head on cached features; resume from ``checkpoint``.

    ``stop_after`` ends the run after that many epochs (as an interruption would);
    a later call with the same arguments continues it. A checkpoint written with other
    settings (epochs, batch, lr, seed, weight decay, number of pairs) is not resumed: the
    run starts over and replaces it.

    Adam with a one-epoch linear warm-up and cosine decay; the checkpoint (model,
    optimiser, epoch, generator state, training seconds so far) is written after every
    epoch. Returns the last epoch's mean losses and the training seconds over all the runs
    that made the checkpoint (None if it predates that record).

    ``distill`` and ``distill_loc`` weigh the losses towards the cache's teacher outputs
    (:func:`siamcli.training.objectives.distill_losses`) added to the label losses.

    ``val_cache`` (pairs from sequences left out of training, block-10 features): the label
    losses on it after every epoch, to watch for over-fitting; kept in the checkpoint.
    """
    family = model.family
    targets = targets_for(family)
    params = trainable_parameters(model)
    for p in model.backbone.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    steps_per_epoch = len(cache) // batch
    total_steps = epochs * steps_per_epoch
    gen = torch.Generator().manual_seed(seed)
    first_epoch = 0
    seconds: Optional[float] = 0.0
    last: Dict[str, float] = {}
    history: List[Dict[str, float]] = []
    recipe = {"family": family, "epochs": epochs, "batch": batch, "lr": lr, "seed": seed,
              "weight_decay": weight_decay, "pairs": len(cache)}
    if distill or distill_loc:
        if cache.teacher_prob is None:
            raise ValueError("distillation needs a cache built with a teacher")
        recipe.update(distill=distill, distill_loc=distill_loc)
    state = torch.load(checkpoint, weights_only=False) if checkpoint.is_file() else None
    if state is not None and state.get("recipe") != recipe:
        state = None  # another run's checkpoint: resuming it would return that run's model
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        first_epoch = state["epoch"]
        last = state.get("losses", {})
        seconds = state.get("seconds")  # None: written before checkpoints kept the time
        history = state.get("validation", [])

    def lr_at(step: int) -> float:
        if step < steps_per_epoch:
            return lr * (step + 1) / steps_per_epoch
        progress = (step - steps_per_epoch) / max(1, total_steps - steps_per_epoch)
        return lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress)))

    model.backbone.eval()
    last_epoch = epochs if stop_after is None else min(epochs, stop_after)
    for epoch in range(first_epoch, last_epoch):
        model.neck.train()
        model.head.train()
        order = torch.randperm(len(cache), generator=gen)
        sums = {"cls": 0.0, "loc": 0.0}
        start = time.perf_counter()
        for i in range(steps_per_epoch):
            idx = order[i * batch:(i + 1) * batch]
            step = epoch * steps_per_epoch + i
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
            cls, loc, cls_loss, loc_loss = _forward_losses(model, targets, cache, idx, gen)
            loss = cls_loss + loc_loss
            if distill or distill_loc:
                kd_cls, kd_loc = distill_losses(family, cls, loc, cache.teacher_prob[idx].float(),
                                                cache.teacher_box[idx].float(), cache.prior[idx],
                                                cache.negative[idx], targets.points)
                kd = distill * kd_cls + distill_loc * kd_loc
                loss = loss + kd
                sums["kd"] = sums.get("kd", 0.0) + float(kd.detach())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sums["cls"] += float(cls_loss.detach())
            sums["loc"] += float(loc_loss.detach())
            done = i + 1
            report(f"{family} epoch {epoch + 1}/{epochs}", done, steps_per_epoch,
                   {**{k: v / done for k, v in sums.items()},
                    "pairs/s": done * batch / max(time.perf_counter() - start, 1e-9)})
        last = {k: v / steps_per_epoch for k, v in sums.items()}
        seconds = sum_or_none(seconds, time.perf_counter() - start)
        if val_cache is not None:
            history.append(validation_losses(model, val_cache))
            report(f"{family} validation", epoch + 1, epochs, history[-1])
        tmp = checkpoint.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(),
                    "epoch": epoch + 1, "losses": last, "recipe": recipe, "seconds": seconds,
                    "validation": history}, tmp)
        tmp.replace(checkpoint)
    model.eval()
    return HeadRun(last, seconds, history)
