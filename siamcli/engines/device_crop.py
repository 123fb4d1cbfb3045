"""Search crops cut where the network runs: the frame goes to the device once, each
target's square is sampled from it with one ``grid_sample``.

On a GPU the host-side crop (a view or a warp, a resize, then a float upload of the
patch) costs more than the network itself once CUDA graphs take the launches away.
Here the uint8 frame is uploaded as it is and everything after that -- the square
around each target, the bilinear resize to the model's input size, the first-frame
mean outside the frame, the BGR->RGB swap -- is device work, recorded in the same
CUDA graph as the network.

The sampling is the same map as :func:`siamcli.tracking.crop.warp_patch` (and
``cv2.resize``'s pixel-centre alignment): patch pixel ``u`` reads source coordinate
``xmin + (u + 0.5) * step - 0.5`` with ``step = size / model_size``, bilinear, the
fill colour outside the frame. Outside pixels are handled exactly by linearity: the
frame is sampled with zeros outside, together with a channel of ones, and the fill
is added in proportion to the weight that fell outside. The result is rounded to
whole grey levels, as the uint8 host crop is.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def region_params(regions: Sequence[Sequence[float]], model_size: int) -> np.ndarray:
    """``(size, xmin, ymin)`` squares (:func:`siamcli.tracking.crop.square`) -> (N, 3) float32
    rows ``(step, xmin + step / 2 - 1/2, ymin + step / 2 - 1/2)``: source coordinate of patch
    pixel ``u`` is ``offset + u * step``."""
    out = np.empty((len(regions), 3), dtype=np.float32)
    for i, (size, xmin, ymin) in enumerate(regions):
        step = float(size) / model_size
        out[i] = (step, xmin + 0.5 * step - 0.5, ymin + 0.5 * step - 0.5)
    return out


def fill_colours(fills: Sequence[Sequence[float]], rgb: bool) -> np.ndarray:
    """Fill colours (B, G, R means) truncated to uint8 as the reference does, in network
    channel order, as (N, 3) float32."""
    out = np.asarray(fills, dtype=np.float64).reshape(-1, 3).astype(np.uint8).astype(np.float32)
    return out[:, ::-1].copy() if rgb else out


def sample_squares(frame: torch.Tensor, params: torch.Tensor, fills: torch.Tensor, model_size: int,
                   rgb: bool) -> torch.Tensor:
    """Cut N squares of a (H, W, 3) uint8 frame tensor -> (N, 3, model_size, model_size) float32.

    ``params``: (N, 3) rows of :func:`region_params`; ``fills``: (N, 3) rows of
    :func:`fill_colours`, both on the frame's device.
    """
    height, width = frame.shape[:2]
    count = params.shape[0]
    image = frame.permute(2, 0, 1).float()
    if rgb:
        image = image.flip(0)
    ones = torch.ones((1, height, width), dtype=image.dtype, device=image.device)
    image = torch.cat([image, ones], 0)[None]  # (1, 4, H, W): colours + the inside mask
    steps = torch.arange(model_size, dtype=torch.float32, device=frame.device)
    xs = params[:, 1:2] + steps * params[:, 0:1]  # (N, M) source x of each patch column
    ys = params[:, 2:3] + steps * params[:, 0:1]
    gx = (2 * xs + 1) / width - 1  # grid_sample's align_corners=False normalisation
    gy = (2 * ys + 1) / height - 1
    grid = torch.stack([gx[:, None, :].expand(count, model_size, model_size),
                        gy[:, :, None].expand(count, model_size, model_size)], -1)
    # every target's grid stacked along one axis: one sampling call over the one frame
    grid = grid.reshape(1, count * model_size, model_size, 2)
    sampled = F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    sampled = sampled.reshape(4, count, model_size, model_size).permute(1, 0, 2, 3)
    colours, inside = sampled[:, :3], sampled[:, 3:]
    return torch.round(colours + (1 - inside) * fills[:, :, None, None])
