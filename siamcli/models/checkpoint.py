"""Reading checkpoints safely and loading them strictly, with a readable report on mismatch.

Accepted forms: a plain state dict (the model zoos' ``model.pth``), a training
snapshot ``{'epoch', 'state_dict', 'optimizer'}``, and keys prefixed with
``module.`` (saved from DataParallel). Files are read with
``torch.load(weights_only=True)``: a checkpoint is never unpickled as
arbitrary Python objects.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np
import torch

from ..errors import SiamcliError
from .base import SiameseModel

StateDict = Dict[str, torch.Tensor]
SHOW = 4  # how many keys of each kind a mismatch report names


def _numpy_safe_globals() -> list:
    """numpy scalar types that training snapshots store in their optimizer entry (e.g. lr)."""
    try:
        scalar = np._core.multiarray.scalar  # numpy >= 2
    except AttributeError:  # pragma: no cover - numpy 1.x
        scalar = np.core.multiarray.scalar
    dtypes = [type(np.dtype(t)) for t in (np.float64, np.float32, np.int64, np.int32)]
    # pickles written under numpy 1.x name the scalar constructor numpy.core.multiarray.scalar
    return [scalar, (scalar, "numpy.core.multiarray.scalar"), np.dtype, *dtypes]


def read_state_dict(path: Union[str, Path]) -> StateDict:
    """Read the tensors of a checkpoint file, unwrapped and with ``module.`` stripped."""
    path = Path(path)
    if not path.exists():
        raise SiamcliError(f"weights file not found: {path}")
    if not path.is_file():
        raise SiamcliError(f"weights path is not a file: {path}")
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        lines = str(exc).strip().splitlines()
        reason = next((ln.strip() for ln in lines if "Unsupported global" in ln), "")
        if not reason:
            raise SiamcliError(f"{path} is not a PyTorch checkpoint (unreadable pickle data)") from None
        raise SiamcliError(
            f"{path} holds Python objects besides tensors and is not loaded for safety ({reason}); "
            "re-save it with torch.save(model.state_dict(), path)"
        ) from None
    except Exception as exc:  # any failure to parse a user's file is a bad-input error
        raise SiamcliError(f"{path} is not a PyTorch checkpoint ({type(exc).__name__})") from None

    if isinstance(obj, Mapping):
        for wrapper in ("state_dict", "model"):
            inner = obj.get(wrapper)
            if isinstance(inner, Mapping):
                obj = inner
                break
    if not isinstance(obj, Mapping):
        raise SiamcliError(f"{path} does not contain a state dict (found {type(obj).__name__})")
    state: StateDict = {}
    for key, value in obj.items():
        if isinstance(key, str) and isinstance(value, torch.Tensor):
            state[key[len("module."):] if key.startswith("module.") else key] = value
    if not state:
        raise SiamcliError(f"{path} contains no weight tensors")
    return state


def _shape(t) -> Tuple[int, ...]:
    return tuple(t.shape) if hasattr(t, "shape") else tuple(t)


def _listed(keys: List[str]) -> str:
    shown = ", ".join(keys[:SHOW])
    return shown + (f", ... (+{len(keys) - SHOW} more)" if len(keys) > SHOW else "")


def mismatch_report(model: SiameseModel, state: Mapping[str, torch.Tensor]) -> Optional[str]:
    """None when ``state`` fits ``model`` exactly (missing BN counters aside), else a summary."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} {list(_shape(state[k]))} vs {list(expected[k].shape)}"
        for k in expected if k in state and _shape(state[k]) != tuple(expected[k].shape)
    ]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing ({_listed(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected ({_listed(unexpected)})")
    if wrong:
        parts.append(f"{len(wrong)} of the wrong shape ({_listed(wrong)})")
    return "; ".join(parts) if parts else None


def load_weights(model: SiameseModel, path: Union[str, Path], name: str,
                 guess: Optional[Callable[[StateDict], Optional[str]]] = None) -> SiameseModel:
    """Load checkpoint ``path`` into ``model`` (of model ``name``) strictly. ``guess`` names the
    model a checkpoint that does not fit looks like (:func:`siamcli.catalog.guess_model`)."""
    state = read_state_dict(path)
    report = mismatch_report(model, state)
    if report:
        like = guess(state) if guess is not None else None
        hint = (f"; the keys look like a {like} checkpoint: try --model {like}" if like
                else "; check that the weights and the model (or config) belong together")
        raise SiamcliError(f"weights {path} do not fit model {name}: {report}{hint}")
    broken = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if broken:  # every score would be NaN: the tracker would answer "lost" on every frame, quietly
        raise SiamcliError(f"weights {path} hold NaN or infinite values in {len(broken)} tensor"
                           f"{'s' if len(broken) > 1 else ''} ({_listed(broken)}): a diverged training run?")
    for key, value in model.state_dict().items():
        if key not in state:  # only num_batches_tracked can be missing here
            state[key] = value
    model.load_state_dict(state, strict=True)
    return model.eval()
