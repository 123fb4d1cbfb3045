"""Batch manifests: a CSV of videos with their first boxes, or a folder of OTB-style sequences.

A CSV manifest has a header. Required columns: ``video,x,y,w,h`` (the first
box, 0-based pixels, on frame ``start_frame``). Optional columns: ``model``,
``weights``, ``start_frame`` (0-based, default 0), ``aspect_lr`` (the box
aspect's learning rate in [0, 1], as ``track --aspect-lr``; empty: the batch's
``--aspect-lr``, else the model's own) and ``id`` (the name of the output file,
default the video's file name without its suffix; repeated names get ``-2``,
``-3``, ... in manifest order). Relative paths in the manifest are
taken relative to the manifest's own folder.

A problem with one row (a malformed line, a box that is not four numbers, a
bad ``id``) does not stop the batch: the row becomes a :class:`Job` carrying
its ``error`` and is reported in the summary. Problems with the manifest as a
whole (missing file, no header, unknown or missing columns) raise
:class:`SiamcliError`.
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from ..catalog import DEFAULT_MODEL, is_bundled
from ..errors import SiamcliError, quoted

REQUIRED_COLUMNS = ("video", "x", "y", "w", "h")
OPTIONAL_COLUMNS = ("model", "weights", "start_frame", "aspect_lr", "id")
GROUNDTRUTH = "groundtruth_rect.txt"
_ID_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
#: longest output name: with the suffixes and the temporary names' process id it stays within
#: the 255 bytes a file name may take
MAX_ID_LENGTH = 200
#: ids whose files would be the batch's own (``summary.csv``), compared in lower case as a
#: case-insensitive file system would
RESERVED_IDS = ("summary",)

Box = Tuple[float, float, float, float]


@dataclass(frozen=True)
class Job:
    """One video to track. ``error`` is set when the manifest row itself is unusable."""

    id: str
    video: str
    box: Optional[Box]
    start_frame: int = 0
    model: Optional[str] = None
    config: Optional[str] = None
    weights: Optional[str] = None
    #: the box aspect's learning rate for this video; None: the model's own
    aspect_lr: Optional[float] = None
    line: int = 0
    error: Optional[str] = None

    def fingerprint(self, fmt: str, max_frames: Optional[int] = None) -> str:
        """Hash of everything that decides the output; a finished output is reused only if it matches."""
        doc = {k: v for k, v in asdict(self).items() if k not in ("line", "error")}
        if doc["aspect_lr"] is None:  # left out, so outputs of runs before the field existed stay valid
            del doc["aspect_lr"]
        if max_frames is not None:  # likewise: only a limited run differs from a whole one
            doc["max_frames"] = max_frames
        doc["format"] = fmt
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Defaults:
    """Batch-wide model settings used where a row does not name its own."""

    model: Optional[str] = None
    config: Optional[str] = None
    weights: Optional[str] = None
    aspect_lr: Optional[float] = None


def _resolve(base: Path, value: str) -> str:
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base / path))


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{what} is not a number: {quoted(text)}") from None
    if not math.isfinite(value):
        raise ValueError(f"{what} is not finite: {quoted(text)}")
    return value


def _row_job(row: Dict[str, str], line: int, base: Path, defaults: Defaults) -> Job:
    """A job from one CSV row; raises ValueError with the reason when the row is unusable."""
    video = (row.get("video") or "").strip()
    if not video:
        raise ValueError("the video column is empty")
    box = tuple(_number((row.get(k) or "").strip(), k) for k in ("x", "y", "w", "h"))
    start_text = (row.get("start_frame") or "").strip()
    start = 0
    if start_text:
        value = _number(start_text, "start_frame")
        if value < 0 or value != int(value):
            raise ValueError(f"start_frame must be a whole number >= 0, got {quoted(start_text)}")
        start = int(value)
    aspect_text = (row.get("aspect_lr") or "").strip()
    aspect_lr = defaults.aspect_lr
    if aspect_text:
        aspect_lr = _number(aspect_text, "aspect_lr")
        if not 0.0 <= aspect_lr <= 1.0:
            raise ValueError(f"aspect_lr must lie in [0, 1], got {quoted(aspect_text)}")
    model = (row.get("model") or "").strip() or None
    weights = (row.get("weights") or "").strip() or None
    config = None
    if model is None:
        model, config = defaults.model, defaults.config
        weights = _resolve(base, weights) if weights else defaults.weights
        if model is None and config is None:
            model = DEFAULT_MODEL  # siamcli's bundled default model
    elif weights:
        weights = _resolve(base, weights)
    elif model == defaults.model:
        weights = defaults.weights
    elif is_bundled(model):
        weights = None  # the bundled weights
    else:
        raise ValueError(f"model {model} needs weights: add a weights column, or pass --model {model} --weights FILE")
    return Job(id="", video=_resolve(base, video), box=box, start_frame=start,  # type: ignore[arg-type]
               model=model, config=config, weights=weights, aspect_lr=aspect_lr, line=line)


def read_csv_manifest(path: Path, defaults: Defaults) -> List[Job]:
    base = path.absolute().parent
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            rows = [(reader.line_num, cells) for cells in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SiamcliError(f"cannot read manifest {path}: {exc}") from None
    if not rows or not any(c.strip() for c in rows[0][1]):
        raise SiamcliError(f"manifest {path} is empty: it needs a header line such as video,x,y,w,h")
    header = [c.strip().lower() for c in rows[0][1]]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    unknown = [c for c in header if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if missing or unknown:
        problem = []
        if missing:
            problem.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            problem.append(f"unknown column(s) {', '.join(unknown)}")
        raise SiamcliError(
            f"manifest {path}: {'; '.join(problem)} (header must hold {','.join(REQUIRED_COLUMNS)} "
            f"and optionally {','.join(OPTIONAL_COLUMNS)})"
        )
    if len(set(header)) != len(header):
        raise SiamcliError(f"manifest {path}: a column name appears twice in the header")
    jobs: List[Job] = []
    explicit_ids: List[Optional[str]] = []
    for number, cells in rows[1:]:
        if not any(c.strip() for c in cells) or cells[0].lstrip().startswith("#"):
            continue
        raw_id = None
        if "id" in header and len(cells) > header.index("id"):
            raw_id = cells[header.index("id")].strip() or None
        try:
            if len(cells) != len(header):
                raise ValueError(f"expected {len(header)} fields ({','.join(header)}), found {len(cells)}")
            job = _row_job(dict(zip(header, cells)), number, base, defaults)
        except ValueError as exc:
            video = cells[header.index("video")].strip() if len(cells) > header.index("video") else ""
            job = Job(id="", video=_resolve(base, video) if video else "", box=None, line=number,
                      error=f"manifest line {number}: {exc}")
        jobs.append(job)
        explicit_ids.append(raw_id)
    return assign_ids(jobs, explicit_ids)


def _stem(video: str) -> str:
    name = Path(video).name if video else ""
    stem = Path(name).stem if Path(name).suffix else name
    stem = re.sub(r"[^A-Za-z0-9._+-]", "_", stem).lstrip("._-")
    return stem[:MAX_ID_LENGTH - 8] or "video"  # room for a "-N" that tells repeats apart


def assign_ids(jobs: List[Job], explicit: List[Optional[str]]) -> List[Job]:
    """Give every job a unique output name: its ``id`` cell, else the video stem (``-2``... on repeats)."""
    used: Dict[str, int] = {}
    taken = {i for i in explicit if i}
    out: List[Job] = []
    for job, wanted in zip(jobs, explicit):
        error = job.error
        if wanted:
            if not _ID_OK.match(wanted):
                name = f"line{job.line}"
                error = error or (f"manifest line {job.line}: id {wanted!r} is not a plain file name "
                                  "(letters, digits, . _ + - only)")
            elif len(wanted) > MAX_ID_LENGTH:
                name = f"line{job.line}"
                error = error or (f"manifest line {job.line}: id {wanted[:20]}... is {len(wanted)} characters "
                                  f"long; at most {MAX_ID_LENGTH}")
            elif wanted.lower() in RESERVED_IDS:
                name = f"line{job.line}"
                error = error or (f"manifest line {job.line}: id {wanted!r} is taken by the batch's own "
                                  f"{wanted.lower()}.csv; choose another")
            elif wanted in used:
                name = f"line{job.line}"
                error = error or f"manifest line {job.line}: id {wanted!r} is used by an earlier row"
            else:
                name = wanted
        else:
            stem = _stem(job.video) if job.video else f"line{job.line}"
            name, n = stem, 1
            while name in used or name in taken or name.lower() in RESERVED_IDS:
                n += 1
                name = f"{stem}-{n}"
        used[name] = 1
        out.append(Job(**{**asdict(job), "id": name, "error": error, "box": job.box}))
    return out


def _first_box(folder: Path) -> Tuple[Box, int]:
    from ..eval.datasets import read_groundtruth, valid_boxes

    gt = read_groundtruth(folder / GROUNDTRUTH)
    annotated = np.flatnonzero(valid_boxes(gt))
    if annotated.size == 0:
        raise SiamcliError(f"{folder / GROUNDTRUTH} has no box with positive size to start from")
    start = int(annotated[0])
    return tuple(float(v) for v in gt[start]), start  # type: ignore[return-value]


def read_sequence_folder(root: Path, defaults: Defaults) -> List[Job]:
    """One job per OTB-style sequence (``img/`` + ``groundtruth_rect.txt``), started on its first annotated box."""
    folders = [root] if (root / GROUNDTRUTH).is_file() else sorted(
        d for d in root.iterdir() if d.is_dir() and (d / GROUNDTRUTH).is_file())
    if not folders:
        raise SiamcliError(f"no OTB-style sequences (img/ + {GROUNDTRUTH}) under {root}; "
                           "give a manifest CSV or a folder of sequences")
    jobs = []
    for number, folder in enumerate(folders, start=1):
        try:
            box, start = _first_box(folder)
            jobs.append(Job(id="", video=str(folder), box=box, start_frame=start, model=defaults.model,
                            config=defaults.config, weights=defaults.weights, aspect_lr=defaults.aspect_lr,
                            line=number))
        except SiamcliError as exc:
            jobs.append(Job(id="", video=str(folder), box=None, line=number, error=str(exc)))
    return assign_ids(jobs, [None] * len(jobs))


def read_manifest(path: Union[str, Path], defaults: Defaults = Defaults()) -> List[Job]:
    """The jobs of a manifest CSV or of a folder of OTB-style sequences, in order."""
    path = Path(path)
    if not path.exists():
        raise SiamcliError(f"manifest not found: {path}")
    # absolute paths: workers (Ray's especially) need not share this process's working folder
    defaults = Defaults(model=defaults.model,
                        config=str(Path(defaults.config).absolute()) if defaults.config else None,
                        weights=str(Path(defaults.weights).absolute()) if defaults.weights else None,
                        aspect_lr=defaults.aspect_lr)
    path = path.absolute()
    jobs = read_sequence_folder(path, defaults) if path.is_dir() else read_csv_manifest(path, defaults)
    if not jobs:
        raise SiamcliError(f"manifest {path} lists no videos")
    return jobs
