"""Reading checkpoints safely and loading them strictly, with a readable report on mismatch.

Accepted forms: a plain state dict (the model zoos' ``model.pth``), a training
snapshot ``{'epoch', 'state_dict', 'optimizer'}``, and keys prefixed with
``module.`` (saved from DataParallel). Files are read with
``torch.load(weights_only=True)``: a checkpoint is never unpickled as
arbitrary Python objects. Every tensor is checked as it is read (:func:`read_state_dict`) and
against the network it is loaded into (:func:`load_weights`): a checkpoint either loads as
float32 weights that fit, or is refused in one line naming the tensor at fault.
"""
from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np
import torch

from ..errors import SiamcliError, quoted
from ..io.checkpoint_file import check_checkpoint_file
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
    """Read the tensors of a checkpoint file, unwrapped and with ``module.`` stripped.

    The file is checked before torch reads it (:func:`siamcli.io.checkpoint_file.check_checkpoint_file`:
    a regular file, its size, what its zip entries inflate to) and every tensor after
    (:func:`_checked`): dense, on no device but memory, of a real dtype (floating point, with
    half and bfloat16 widened to float32, or integer) and finite."""
    path = check_checkpoint_file(path)
    try:
        # torch warns about what it meets in the file (an old pickle protocol, typed storages of
        # quantized tensors): what matters of it is refused below, in one line
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with torch.serialization.safe_globals(_numpy_safe_globals()):
                obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        lines = str(exc).strip().splitlines()
        reason = next((ln.strip() for ln in lines if "Unsupported global" in ln), "")
        if not reason:
            raise SiamcliError(f"{path} is not a PyTorch checkpoint (unreadable pickle data)") from None
        raise SiamcliError(
            f"{path} holds Python objects besides tensors and is not loaded for safety ({quoted(reason, 160)}); "
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
            state[key[len("module."):] if key.startswith("module.") else key] = _checked(path, key, value)
    if not state:
        raise SiamcliError(f"{path} contains no weight tensors")
    broken = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if broken:  # every score would be NaN: the tracker would answer "lost" on every frame, quietly
        raise SiamcliError(f"weights {path} hold NaN or infinite values in {len(broken)} tensor"
                           f"{'s' if len(broken) > 1 else ''} ({_listed(broken)}): a diverged training run?")
    return state


#: floating-point dtypes weights may come in; half, bfloat16 and float64 are widened (or
#: narrowed) to the float32 the networks run in
FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
#: integer dtypes, for the counters a network keeps (BatchNorm's num_batches_tracked)
INTEGER_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


def _checked(path: Path, key: str, value: torch.Tensor) -> torch.Tensor:
    """``value`` as a network may load it, or a :class:`SiamcliError` naming ``key`` and what it is:
    a sparse, quantized or meta tensor holds no dense weights to copy, an expanded view stands for
    more values than the file holds, and a complex, boolean or 8-bit float one would be cast to
    float32 quietly (the imaginary part dropped, the values rounded to a few levels), giving boxes
    that look plausible and are wrong."""
    what = None
    if value.layout != torch.strided:
        what = f"a sparse tensor ({str(value.layout).replace('torch.', '')})"
    elif value.is_quantized:
        what = f"a quantized tensor ({str(value.dtype).replace('torch.', '')})"
    elif value.device.type == "meta":
        what = "a meta tensor, which holds no values"
    elif value.dtype not in FLOAT_DTYPES + INTEGER_DTYPES:
        what = f"of dtype {str(value.dtype).replace('torch.', '')}"
    elif value.numel() * value.element_size() > value.untyped_storage().nbytes():
        # an expanded view (stride 0): a few stored values standing for billions, each of which
        # the checks and the load below would make real
        what = f"a view of {value.numel():,} values over a storage of {value.untyped_storage().nbytes():,} bytes"
    if what is not None:
        raise SiamcliError(f"weights {path}: tensor {key} is {what}; a checkpoint holds dense float32 "
                           "(or float16/bfloat16) weights, as torch.save(model.state_dict(), path) writes them")
    if value.is_floating_point() and value.dtype != torch.float32:
        return value.float()
    return value


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


def check_fit(model: SiameseModel, state: StateDict, path: Union[str, Path], name: str,
              guess: Optional[Callable[[StateDict], Optional[str]]] = None) -> None:
    """Refuse ``state`` (read from ``path``) unless it fits ``model`` (of model ``name``): the same
    keys and shapes, floating-point weights where the network holds them. ``model`` may live on
    the meta device (its shapes, no memory): a config describing a network far larger than its
    checkpoint is refused before that network is made. ``guess`` names the model a checkpoint
    that does not fit looks like (:func:`siamcli.catalog.guess_model`)."""
    report = mismatch_report(model, state)
    if report:
        like = guess(state) if guess is not None else None
        hint = (f"; the keys look like a {like} checkpoint: try --model {like}" if like
                else "; check that the weights and the model (or config) belong together")
        raise SiamcliError(f"weights {path} do not fit model {name}: {report}{hint}")
    expected = model.state_dict()
    for key, value in state.items():
        if value.is_floating_point() != expected[key].is_floating_point():
            want = "floating-point weights" if expected[key].is_floating_point() else "an integer counter"
            raise SiamcliError(f"weights {path}: tensor {key} is of dtype {str(value.dtype).replace('torch.', '')}, "
                               f"where model {name} holds {want}; re-save the checkpoint with its float32 weights")


def load_weights(model: SiameseModel, path: Union[str, Path], name: str,
                 guess: Optional[Callable[[StateDict], Optional[str]]] = None,
                 state: Optional[StateDict] = None) -> SiameseModel:
    """Load checkpoint ``path`` (``state``: its tensors, already read) into ``model`` (of model
    ``name``) strictly, after :func:`check_fit`."""
    state = read_state_dict(path) if state is None else dict(state)
    check_fit(model, state, path, name, guess)
    for key, value in model.state_dict().items():
        if key not in state:  # only num_batches_tracked can be missing here
            state[key] = value
    model.load_state_dict(state, strict=True)
    return model.eval()
