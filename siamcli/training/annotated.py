"""Training pairs from annotated real objects: target-centred crops of tracking sequences and photos.

The data (``shared/data/train``, see its README) is OTB-style folders of *crops*: every kept frame
of a source video cut to a square of 3 x the template context around the target and resized to
383 px, with the target's box in the crop and, in ``frames.txt``, where the square lay in the source
frame (``cx, cy, side``). Photo sets (``images/<set>``) hold one such crop per annotated box.

A pair is drawn as the tracker meets it:

* *video* pairs: the template from one kept frame, the search region from another of the same
  sequence at most ``max_gap`` kept frames away (as pysot samples video datasets). The search
  region is centred where the target was in the template's frame (plus a random shift, as a
  tracker's estimate drifts) and sized from the template's box with a random error (the pair's
  ``prior``, which the lite models' boxes are relative to); the label is the target's true box
  in the later frame. Both boxes are mapped through the source geometry, so real motion, scale
  change, deformation and aspect change are what the heads learn from. The shift is limited so
  that the search window stays inside the crop where it can (beyond the crop there is no picture).
* *still* pairs: a photo crop and a copy of it scaled, stretched and shifted (the SiamRPN
  authors' use of detection data);
* *negative* pairs: a template and the search region around another sequence's target; half
  of them (``similar``) from a sequence of the same source dataset (other cars seen from the same
  kind of drone, other people), the look-alikes that DaSiamRPN trains against.

Every crop gets the colour, grey and blur augmentation of :func:`.data.photometric`, and the pair
is mirrored half the time (:func:`.data.finish_pair`).
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import cv2
import numpy as np

from ..io.sources import list_frames
from ..tracking.crop import context_size
from .data import EXEMPLAR, INSTANCE, Pair, crop, finish_pair, map_box, photometric

GROUNDTRUTH = "groundtruth_rect.txt"
GEOMETRY = "frames.txt"


@dataclass
class AnnotatedSequence:
    """One folder of crops: BGR images, boxes (x, y, w, h) in crop pixels, the squares
    (cx, cy, side) they were cut from in source pixels, and whether the crops are independent
    photos (``still``) rather than frames of one video."""

    name: str
    group: str
    crops: List[np.ndarray]
    boxes: np.ndarray
    squares: np.ndarray
    still: bool

    def __len__(self) -> int:
        return len(self.crops)


def _read_boxes(path: Path) -> np.ndarray:
    rows = [[float(v) for v in line.replace("\t", ",").split(",")]
            for line in path.read_text().splitlines() if line.strip()]
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


def _read_geometry(path: Path) -> "tuple[np.ndarray, bool]":
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    still = bool(rows) and "source_image" in rows[0]
    squares = np.asarray([[float(r["cx"]), float(r["cy"]), float(r["side"])] for r in rows], dtype=np.float64)
    return squares.reshape(-1, 3), still


def load_sequence(folder: Path, group: Optional[str] = None) -> AnnotatedSequence:
    """One crop folder (``img/``, ``groundtruth_rect.txt``, ``frames.txt``)."""
    frames = list_frames(folder / "img")
    boxes = _read_boxes(folder / GROUNDTRUTH)
    squares, still = _read_geometry(folder / GEOMETRY)
    n = min(len(frames), len(boxes), len(squares))
    crops = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in frames[:n]]
    if any(c is None for c in crops):
        raise ValueError(f"{folder}: an image in img/ cannot be decoded")
    return AnnotatedSequence(folder.name, group or folder.name.split("_")[0], crops, boxes[:n], squares[:n], still)


def find_sequences(root: Path) -> List[Path]:
    """Every crop folder under ``root``: its sequences and the photo sets under ``images/``."""
    root = Path(root)
    found = [d for d in sorted(root.iterdir()) if (d / GROUNDTRUTH).is_file() and (d / GEOMETRY).is_file()]
    images = root / "images"
    if images.is_dir():
        found += [d for d in sorted(images.iterdir()) if (d / GROUNDTRUTH).is_file() and (d / GEOMETRY).is_file()]
    return found


def load_annotated(root: Path, names: Optional[Sequence[str]] = None,
                   exclude: Sequence[str] = ()) -> List[AnnotatedSequence]:
    """The crop folders under ``root`` (only ``names`` if given, never those in ``exclude``)."""
    folders = [d for d in find_sequences(root)
               if (names is None or d.name in names) and d.name not in exclude]
    return [load_sequence(d, "images" if d.parent.name == "images" else None) for d in folders]


class AnnotatedPairSampler:
    """Draws :class:`~.data.Pair` samples from annotated crops (see module doc).

    ``max_gap``: kept frames between template and search (the crops keep every third annotated
    frame); ``search_shift``: the largest shift of the search centre, in search-patch pixels;
    ``prior_scale`` / ``prior_aspect``: the size estimate's log error in scale and aspect;
    ``negative``: share of negative pairs, ``similar`` the share of those from the same dataset;
    ``still_scale`` / ``still_aspect``: a photo's copy scaled and stretched by up to exp(+-that).
    """

    def __init__(self, sequences: Sequence[AnnotatedSequence], seed: int = 0, max_gap: int = 10,
                 search_shift: float = 64.0, prior_scale: float = 0.25, prior_aspect: float = 0.25,
                 negative: float = 0.2, similar: float = 0.5, still_scale: float = 0.25,
                 still_aspect: float = 0.25) -> None:
        if not sequences:
            raise ValueError("no annotated sequences")
        self.sequences = list(sequences)
        self.rng = np.random.default_rng(seed)
        self.max_gap = max_gap
        self.search_shift = search_shift
        self.prior_scale = prior_scale
        self.prior_aspect = prior_aspect
        self.negative = negative
        self.similar = similar
        self.still_scale = still_scale
        self.still_aspect = still_aspect
        # sequences weighed by the square root of their length: long ones give more distinct
        # pairs, but not so many that a few of them make up most of what the heads see
        weights = np.array([math.sqrt(len(s)) for s in self.sequences], dtype=np.float64)
        self._weights = weights / weights.sum()

    # -- drawing -----------------------------------------------------------------
    def _sequence(self, pool: Optional[Sequence[int]] = None) -> AnnotatedSequence:
        if pool is None:
            return self.sequences[int(self.rng.choice(len(self.sequences), p=self._weights))]
        w = self._weights[list(pool)]
        return self.sequences[int(pool[int(self.rng.choice(len(pool), p=w / w.sum()))])]

    def _template(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        rng = self.rng
        x, y, w, h = box
        s_z = context_size(w, h, 0.5) * (1 + rng.uniform(-0.05, 0.05))
        shift = rng.uniform(-4, 4, size=2) * s_z / EXEMPLAR
        patch, _ = crop(image, (x + w / 2 + shift[0], y + h / 2 + shift[1]), s_z, s_z, EXEMPLAR,
                        cv2.mean(image)[:3])
        return photometric(patch, rng, blur=0.0)

    def _estimate(self, w: float, h: float) -> "tuple[float, float]":
        """A tracker-like size estimate of a (w, h) target: log-uniform errors in scale and aspect."""
        rng = self.rng
        scale = math.exp(rng.uniform(-self.prior_scale, self.prior_scale))
        stretch = math.exp(rng.uniform(-self.prior_aspect, self.prior_aspect) / 2)
        return w * scale * stretch, h * scale / stretch

    def _search(self, image: np.ndarray, center: Sequence[float], prior: Sequence[float],
                target: Optional[np.ndarray]):
        """The search patch of ``image`` around ``center`` (shifted, kept inside the image where
        it fits) for a size estimate ``prior`` (w, h); ``target`` (x, y, w, h) mapped into it."""
        rng = self.rng
        side = context_size(prior[0], prior[1], 0.5) * INSTANCE / EXEMPLAR
        cx, cy = (c + s for c, s in zip(center, rng.uniform(-1, 1, size=2) * self.search_shift * side / INSTANCE))
        height, width = image.shape[:2]
        # the crop holds no picture beyond its border: keep the window inside where it can be
        cx = width / 2 if side >= width else min(max(cx, side / 2), width - side / 2)
        cy = height / 2 if side >= height else min(max(cy, side / 2), height - side / 2)
        patch, forward = crop(image, (cx, cy), side, side, INSTANCE, cv2.mean(image)[:3])
        box = np.zeros(4, np.float32) if target is None else map_box(target, forward)
        size = np.array(prior, dtype=np.float32) * np.float32(INSTANCE / side)
        return photometric(patch, rng), box, size

    def _video_pair(self, seq: AnnotatedSequence):
        rng = self.rng
        i = int(rng.integers(len(seq)))
        lo, hi = max(0, i - self.max_gap), min(len(seq) - 1, i + self.max_gap)
        j = int(rng.integers(lo, hi + 1))
        template = self._template(seq.crops[i], seq.boxes[i])
        # the template frame's box in source pixels, then in crop j's pixels
        (ci_x, ci_y, side_i), (cj_x, cj_y, side_j) = seq.squares[i], seq.squares[j]
        k_i = side_i / seq.crops[i].shape[1]
        k_j = seq.crops[j].shape[1] / side_j
        x, y, w, h = seq.boxes[i]
        src_cx = ci_x - side_i / 2 + (x + w / 2) * k_i
        src_cy = ci_y - side_i / 2 + (y + h / 2) * k_i
        center = ((src_cx - (cj_x - side_j / 2)) * k_j, (src_cy - (cj_y - side_j / 2)) * k_j)
        prior = self._estimate(w * k_i * k_j, h * k_i * k_j)
        search, box, size = self._search(seq.crops[j], center, prior, seq.boxes[j])
        return template, search, box, size, "video"

    def _still_pair(self, seq: AnnotatedSequence):
        rng = self.rng
        i = int(rng.integers(len(seq)))
        image, box = seq.crops[i], seq.boxes[i]
        template = self._template(image, box)
        # the copy: scaled about the target's centre, and stretched
        scale = math.exp(rng.uniform(-self.still_scale, self.still_scale))
        stretch = math.exp(rng.uniform(-self.still_aspect, self.still_aspect) / 2)
        fx, fy = scale * stretch, scale / stretch
        x, y, w, h = box
        cx, cy = x + w / 2, y + h / 2
        height, width = image.shape[:2]
        affine = np.array([[fx, 0.0, cx - fx * cx], [0.0, fy, cy - fy * cy]])
        copy = cv2.warpAffine(image, affine, (width, height), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=cv2.mean(image)[:3])
        moved = np.array([cx - fx * w / 2, cy - fy * h / 2, fx * w, fy * h])
        prior = self._estimate(w, h)
        search, target, size = self._search(copy, (cx, cy), prior, moved)
        return template, search, target, size, "still"

    def _negative_pair(self, seq: AnnotatedSequence):
        rng = self.rng
        index = self.sequences.index(seq)
        same = [k for k, s in enumerate(self.sequences) if s.group == seq.group and k != index]
        other = [k for k, s in enumerate(self.sequences) if k != index]
        pool = same if same and rng.random() < self.similar else other
        i = int(rng.integers(len(seq)))
        template = self._template(seq.crops[i], seq.boxes[i])
        decoy = self._sequence(pool)
        j = int(rng.integers(len(decoy)))
        x, y, w, h = decoy.boxes[j]
        search, _, size = self._search(decoy.crops[j], (x + w / 2, y + h / 2), self._estimate(w, h), None)
        return template, search, np.zeros(4, np.float32), size, "negative"

    def sample(self) -> Pair:
        rng = self.rng
        seq = self._sequence()
        if len(self.sequences) > 1 and rng.random() < self.negative:
            template, search, box, size, kind = self._negative_pair(seq)
        elif seq.still or len(seq) == 1:
            template, search, box, size, kind = self._still_pair(seq)
        else:
            template, search, box, size, kind = self._video_pair(seq)
        return finish_pair(rng, template, search, box, kind == "negative", kind, size)


class MixedSampler:
    """Draws from several samplers in fixed shares: ``parts`` is (share, sampler factory) pairs,
    each factory called with its own seed derived from ``seed``."""

    def __init__(self, parts, seed: int = 0) -> None:
        shares = np.array([share for share, _ in parts], dtype=np.float64)
        if shares.sum() <= 0 or (shares < 0).any():
            raise ValueError(f"bad shares {shares.tolist()}")
        self.shares = shares / shares.sum()
        self.rng = np.random.default_rng([seed, 7])
        self.samplers = [make(seed * 31 + k) if share > 0 else None for k, (share, make) in enumerate(parts)]

    def sample(self) -> Pair:
        k = int(self.rng.choice(len(self.samplers), p=self.shares))
        return self.samplers[k].sample()
