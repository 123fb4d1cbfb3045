"""What the tracker asks of whatever runs the network: every operation it may call, declared.

The engines (:mod:`siamcli.engines`: torch, onnxruntime, NanoTrack's ONNX pair) implement this
protocol without importing it, so the tracking code never depends on a runtime and a runtime
never on the tracker. Patches are uint8 arrays in the network's channel order, (H, W, 3) or a
batch (N, H, W, 3); ``cls`` and ``loc`` come back as float32 arrays, (N, 2K, S, S) and
(N, 4K, S, S) (:mod:`siamcli.models.base`).
"""
from __future__ import annotations

from typing import Any, Optional, Protocol, Sequence, Tuple

import numpy as np

#: ``(size, xmin, ymin)``: a search square in frame pixels (:func:`.crop.square`)
Region = Tuple[int, int, int]


class Engine(Protocol):
    #: what ran the network, as reported to users: ``"onnx-cpu"``, ``"torch-cuda-fp16-graphs"``, ...
    name: str
    #: the numeric precision it runs in: ``"fp32"``, ``"bf16"``, ``"fp16"`` or ``"int8"``
    precision: str
    #: True: the engine cuts the search crops itself from the whole frame (:meth:`track_regions`,
    #: on a GPU); False: the tracker crops on the host and calls :meth:`track`
    crops_on_device: bool
    #: the widest search patch the network takes (None: any); re-detection widens no further
    max_instance_size: Optional[int]

    def template(self, patch: np.ndarray) -> Any:
        """Template features of one target (or a batch of targets), kept by the tracker."""

    def track(self, patch: np.ndarray, features: Any) -> Tuple[np.ndarray, np.ndarray]:
        """``(cls, loc)`` of search patch ``i`` against template ``i`` (or the one template)."""

    def track_regions(self, frame: np.ndarray, regions: Sequence[Region], model_size: int,
                      fills: Sequence[Sequence[float]], rgb: bool, features: Any) -> Tuple[np.ndarray, np.ndarray]:
        """:meth:`track` on squares of the whole BGR ``frame``, each resized to ``model_size``, the
        area outside the frame in that sample's ``fills`` colour (B, G, R); ``rgb``: the network
        takes RGB. Called only when :attr:`crops_on_device` is True."""

    def join_templates(self, features: Sequence[Any]) -> Any:
        """The template features of several targets as one batch, for one :meth:`track` call."""
