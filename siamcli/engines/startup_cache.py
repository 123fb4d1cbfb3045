"""What a tracker's start costs once per model and machine, kept on disk for the next start.

Remembered in ``$SIAMCLI_CACHE_DIR`` (default ``$XDG_CACHE_HOME/siamcli``, else
``~/.cache/siamcli``; ``SIAMCLI_CACHE_DIR=none`` turns the cache off):

* the ONNX export of a network (``onnx/<key>.template.onnx`` and ``.search.onnx``), keyed by the
  weights file's content, the architecture, the patch sizes and the source of the code that builds and
  exports the network, so any change to either gives a new export. A ResNet-50's pair takes 400 MB:
  the least recently used exports go once they hold more than ``SIAMCLI_CACHE_MAX_MB`` (2048);
* on a CPU, onnxruntime's optimized form of the export instead (``onnx/<key>-ort<machine>.*.onnx``:
  fused and laid out for this CPU, so kept per CPU and onnxruntime version), loaded without
  optimizing again, which roughly halves the time a ResNet-50's pair takes to load;
* ``auto``'s measured choice of engine and precision (``choices.json``), keyed by the model, the
  candidates, the CPU, the thread count and the runtimes' versions: the probe builds and times every
  candidate (seconds to tens of seconds for a ResNet-50), and it is measured once per machine.

With the choice and the export remembered, a start on the onnxruntime engine needs neither torch nor the checkpoint's
network. The cache is an optimisation only: it is never required, and a cache that cannot be read or
written (read-only home, damaged file) is passed over silently.
"""
from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import platform
import sys
import tempfile
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Sequence, Tuple, Union

from ..errors import SiamcliError
from ..io.paths import read_input
from .choices import ENGINES, PRECISIONS

PathLike = Union[str, Path]

#: bump when the layout of the cache changes
FORMAT = 1
#: default room for ONNX exports, in MB (``SIAMCLI_CACHE_MAX_MB``)
MAX_MB = 2048
CHOICES = "choices.json"
_PACKAGE = Path(__file__).resolve().parent.parent
#: sources whose change changes an exported graph or the engines' speed ranking
_CODE = ("models", "engines", "export.py")


def cache_dir() -> Optional[Path]:
    """The cache folder, or None when ``SIAMCLI_CACHE_DIR=none`` turns the cache off."""
    chosen = os.environ.get("SIAMCLI_CACHE_DIR")
    if chosen is not None:
        return None if chosen.strip().lower() in ("", "none", "off", "0") else _resolved(chosen)
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except (RuntimeError, KeyError):  # no home folder to be found
            return None
    return _resolved(Path(base) / "siamcli")


def _resolved(path: PathLike) -> Path:
    """One spelling of a folder (``~`` expanded, links and ``..`` resolved): however a run names
    the cache, it finds, lists and clears the same files."""
    try:
        return Path(path).expanduser().resolve()
    except (OSError, RuntimeError):  # no home for ``~``, a link loop: the path as given
        return Path(path)


def _digest(parts: Iterable[Any]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else repr(part).encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


@lru_cache(maxsize=None)
def code_digest() -> str:
    """A digest of the siamcli sources that build, export and run networks."""
    files = []
    for name in _CODE:
        path = _PACKAGE / name
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return _digest([str(f.relative_to(_PACKAGE)).encode() + b"\0" + f.read_bytes() for f in files if f.is_file()])


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


@lru_cache(maxsize=None)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_digest(path: PathLike) -> str:
    """sha256 of a file's content (remembered within the process while the file is unchanged)."""
    st = os.stat(path)
    return _file_digest(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


def model_key(name: str, architecture: str, config: Any, weights: PathLike, exemplar_size: int,
              instance_size: int) -> str:
    """The key of one network with one weights file, exported for these patch sizes. ``config``:
    the parsed sections of a config.yaml the network is built from (``ModelSpec.network_config``),
    bounded in size when the file was read (:mod:`siamcli.io.yaml_file`), or None."""
    config_text = json.dumps(config, sort_keys=True, default=str) if config is not None else ""
    return _digest([FORMAT, name, architecture, config_text, file_digest(weights), exemplar_size, instance_size,
                    code_digest(), _version("torch")])


def machine_key(model_name: str, candidates: Sequence[Tuple[str, str]], device: Optional[str],
                threads: Optional[int], instance_size: int) -> str:
    """The key of ``auto``'s choice among ``candidates`` for one model on this machine (no device
    and ``auto`` are one device)."""
    return _digest([FORMAT, model_name, list(candidates), device or "auto", threads, instance_size, _cpu_name(),
                    os.cpu_count(), sys.platform, platform.machine(), _version("torch"), _version("onnxruntime"),
                    _version("onnxruntime-gpu"), code_digest()])


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# -- ONNX exports ------------------------------------------------------------------
def _onnx_paths(folder: Path, key: str) -> Tuple[Path, Path]:
    """The (template, search) files of export ``key`` in the cache's ``onnx`` folder."""
    return folder / f"{key}.template.onnx", folder / f"{key}.search.onnx"


def load_onnx(key: str) -> Optional[Tuple[bytes, bytes]]:
    """The remembered (template, search) ONNX bytes of ``key``, or None."""
    root = cache_dir()
    if root is None:
        return None
    paths = _onnx_paths(root / "onnx", key)
    try:  # regular files only: something else put there (a FIFO) would keep the start waiting
        template, search = (read_input(p, "cached export") for p in paths)
    except (OSError, SiamcliError):
        return None
    _mark_used(paths)
    return (template, search) if template and search else None


def _mark_used(paths: Iterable[Path]) -> bool:
    """Touch the files that exist (the last to go when room is made); False if that fails."""
    try:
        for path in paths:
            if path.is_file():
                os.utime(path)
    except OSError:
        return False
    return True


def save_onnx(key: str, graphs: Tuple[bytes, bytes]) -> None:
    """Remember an export (search first: a reader that finds the template finds both)."""
    root = cache_dir()
    if root is None:
        return
    template_path, search_path = _onnx_paths(root / "onnx", key)
    try:
        _write_atomic(search_path, graphs[1])
        _write_atomic(template_path, graphs[0])
        _make_room(root / "onnx", key)
    except OSError:
        pass


def make_room(keep: Tuple[Path, Path]) -> None:
    """Make room after the graphs at ``keep`` (a pair in the cache's ``onnx`` folder) were written."""
    try:
        _make_room(keep[0].parent, keep[0].name.split(".", 1)[0])
    except OSError:
        pass


def _budget() -> int:
    try:
        return int(float(os.environ.get("SIAMCLI_CACHE_MAX_MB", MAX_MB)) * 1e6)
    except ValueError:
        return int(MAX_MB * 1e6)


def _make_room(folder: Path, keep: str) -> None:
    """Delete the least recently used exports (never ``keep``) while they hold more than the budget."""
    exports: Dict[str, Tuple[float, int]] = {}
    for path in folder.glob("*.onnx"):
        key = path.name.split(".", 1)[0]
        st = path.stat()
        used, size = exports.get(key, (0.0, 0))
        exports[key] = (max(used, st.st_mtime), size + st.st_size)
    total, budget = sum(size for _, size in exports.values()), _budget()
    for key, (_, size) in sorted(exports.items(), key=lambda kv: kv[1][0]):
        if total <= budget:
            break
        if key != keep:
            forget_onnx_in(folder, key)
            total -= size


def forget_onnx(key: str) -> None:
    root = cache_dir()
    if root is not None:
        forget_onnx_in(root / "onnx", key)


def forget_onnx_in(folder: Path, key: str) -> None:
    forget_files(_onnx_paths(folder, key))


def optimized_paths(key: str) -> Optional[Tuple[Path, Path]]:
    """Where onnxruntime's optimized (template, search) graphs of export ``key`` for this
    machine go; None when the cache is off or its folder cannot be made."""
    root = cache_dir()
    if root is None:
        return None
    tag = _digest([FORMAT, _version("onnxruntime"), _version("onnxruntime-gpu"), _cpu_name(),
                   platform.machine()])[:12]
    try:
        (root / "onnx").mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return _onnx_paths(root / "onnx", f"{key}-ort{tag}")


def use_optimized(key: str) -> Optional[Tuple[Path, Path]]:
    """The optimized graphs of ``key`` when both are there (marked as used, with the export they
    came from), else None."""
    paths = optimized_paths(key)
    if paths is None or not all(p.is_file() for p in paths):
        return None
    return paths if _mark_used([*paths, *_onnx_paths(paths[0].parent, key)]) else None


def forget_files(paths: Iterable[Path]) -> None:
    for path in paths:
        try:
            path.unlink()
        except OSError:
            pass


# -- auto's choices ------------------------------------------------------------------
#: the largest choices file read: an entry takes about 300 bytes, one per model, machine and setting
MAX_CHOICES_BYTES = 4 << 20
#: what ``auto`` may have chosen (it never chooses ``auto`` itself, nor int8)
CHOSEN_ENGINES = tuple(e for e in ENGINES if e != "auto")
CHOSEN_PRECISIONS = tuple(p for p in PRECISIONS if p not in ("auto", "int8"))


def _valid_entry(entry: Any) -> bool:
    """Whether ``entry`` is a choice as :func:`save_choice` writes it: a damaged or foreign file
    must neither choose an engine nor show up in ``siamcli cache`` as a row of garbage."""
    if not isinstance(entry, dict):
        return False
    kind, _, precision = str(entry.get("choice")).partition("-")
    probe, threads = entry.get("probe_ms"), entry.get("threads")
    return (isinstance(entry.get("choice"), str) and kind in CHOSEN_ENGINES and precision in CHOSEN_PRECISIONS
            and isinstance(entry.get("model"), str) and bool(entry["model"])
            and isinstance(entry.get("device", "auto"), str)
            and (threads is None or (isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1))
            and isinstance(probe, dict)
            and all(isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                    for k, v in probe.items()))


def _read_choices(root: Path) -> Tuple[Dict[str, Any], Optional[str]]:
    """The valid remembered choices by key, and what was passed over as unreadable (None: nothing)."""
    path = root / CHOICES
    try:
        data = json.loads(read_input(path, "choices file", MAX_CHOICES_BYTES))
    except (OSError, ValueError, SiamcliError) as exc:
        if getattr(exc, "errno", None) == errno.ENOENT:
            return {}, None  # nothing measured yet
        return {}, f"{CHOICES} is damaged ({'not JSON' if isinstance(exc, ValueError) else exc})"
    if not isinstance(data, dict):
        return {}, f"{CHOICES} is damaged (a JSON {type(data).__name__}, not an object)"
    valid = {key: entry for key, entry in data.items() if _valid_entry(entry)}
    bad = len(data) - len(valid)
    return valid, (f"{bad} entr{'ies' if bad > 1 else 'y'} of {CHOICES} unreadable" if bad else None)


def _choices(root: Path) -> Dict[str, Any]:
    return _read_choices(root)[0]


def load_choice(key: str) -> Optional[Dict[str, Any]]:
    """``{"choice": "onnx-fp32", "probe_ms": {...}}`` remembered for ``key``, or None."""
    root = cache_dir()
    if root is None:
        return None
    return _choices(root).get(key)


def save_choice(key: str, choice: str, probe_ms: Dict[str, float], model_name: str,
                threads: Optional[int] = None, device: Optional[str] = None) -> None:
    root = cache_dir()
    if root is None:
        return
    data = _choices(root)  # unreadable entries are left out: the file is written anew, whole
    data[key] = {"choice": choice, "probe_ms": probe_ms, "model": model_name, "threads": threads,
                 "device": device or "auto"}
    try:
        _write_atomic(root / CHOICES, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())
    except OSError:
        pass


# -- looking inside ----------------------------------------------------------------
def summary() -> Optional[Dict[str, Any]]:
    """What the cache holds: ``{"dir", "choices": [entries], "unreadable": what was passed over as
    damaged (None: nothing), "exports": networks exported, "optimized": how many of them as onnxruntime optimized
    them, "export_bytes"}``; None when off."""
    root = cache_dir()
    if root is None:
        return None
    files = list((root / "onnx").glob("*.onnx"))
    sizes = []
    for path in files:
        try:
            sizes.append(path.stat().st_size)
        except OSError:
            pass
    valid, unreadable = _read_choices(root)
    choices = [dict(entry) for entry in valid.values()]
    pairs = {p.name.split(".", 1)[0] for p in files}
    optimized = sum("-ort" in k for k in pairs)
    return {"dir": str(root), "choices": sorted(choices, key=lambda e: str(e.get("model"))), "unreadable": unreadable,
            "exports": len({k.split("-ort")[0] for k in pairs}), "optimized": optimized,
            "export_bytes": sum(sizes)}


def clear() -> int:
    """Delete the remembered choices and exports; returns how many files went."""
    root = cache_dir()
    if root is None:
        return 0
    gone = 0
    for path in [root / CHOICES, *(root / "onnx").glob("*.onnx")]:
        try:
            path.unlink()
            gone += 1
        except OSError:
            pass
    return gone
