"""Label assignment and losses for training the SiamRPN and SiamBAN heads.

Both work on the tracker's own score-map grid (:mod:`siamcli.tracking.anchors`),
shifted to search-patch pixels (the patch centre is pixel ``(255 - 1) / 2``),
and express boxes relative to each pair's ``prior`` (the tracker's current
target size in the patch), as the lite models do.

* SiamRPN: one anchor per position, of the prior's shape. Its label depends on
  its position only (the prior may be the wrong size, which the deltas are
  there to correct): positive where the target moved onto it would overlap the
  target at IoU >= 0.6, negative below 0.3; at most 16 positives and 64
  labels in all per pair (pysot's sampling). Loss: cross-entropy (positives and
  negatives averaged separately, half each) plus 1.2 x L1 on the deltas
  (dx/wa, dy/ha, log w/wa, log h/ha).
* SiamBAN: the ellipse rule. A point inside the ellipse of semi-axes
  (w/4, h/4) around the target centre is positive, outside the inscribed
  ellipse (w/2, h/2) negative, in between ignored. Loss: the same balanced
  cross-entropy plus an IoU loss (-ln IoU) on the left/top/right/bottom
  distances (in prior widths and heights) of the positive points.

Negative pairs get only negatives (for SiamRPN, 16 drawn among the anchors of
the central 7x7 cells, as pysot does).
"""
from __future__ import annotations

from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..tracking.anchors import generate_points

CENTER = (255 - 1) / 2


class RPNTargets:
    """Labels of the one-anchor SiamRPN head: at every score-map position an anchor of the
    prior's shape (the tracker's current target size)."""

    def __init__(self, stride: int, size: int, pos_iou: float = 0.6, neg_iou: float = 0.3,
                 pos_num: int = 16, total_num: int = 64, loc_weight: float = 1.2) -> None:
        points = generate_points(stride, size).astype(np.float64) + CENTER
        self.points = torch.from_numpy(points).float()  # (2, S*S)
        self.size = size
        self.pos_iou, self.neg_iou = pos_iou, neg_iou
        self.pos_num, self.total_num = pos_num, total_num
        self.loc_weight = loc_weight
        cy = np.arange(size * size) // size
        cx = np.arange(size * size) % size
        mid = size // 2
        self.central = torch.from_numpy((np.abs(cx - mid) <= 3) & (np.abs(cy - mid) <= 3))

    def assign(self, boxes: torch.Tensor, negative: torch.Tensor, gen: torch.Generator, prior: torch.Tensor
               ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Labels (N, S*S) in {1, 0, -1 (ignored)} and delta targets (N, 4, S*S)."""
        px, py = self.points
        aw, ah = prior[:, 0:1], prior[:, 1:2]
        x1, y1, x2, y2 = (boxes[:, i:i + 1] for i in range(4))
        # the IoU of the target with itself shifted to each position: labels by position alone
        bw, bh = (x2 - x1).clamp(min=1e-3), (y2 - y1).clamp(min=1e-3)
        iw = (bw - (px - (x1 + x2) / 2).abs()).clamp(min=0)
        ih = (bh - (py - (y1 + y2) / 2).abs()).clamp(min=0)
        inter = iw * ih
        iou = inter / (2 * bw * bh - inter)
        labels = torch.full(iou.shape, -1, dtype=torch.long)
        for n in range(len(boxes)):
            if negative[n]:
                pool = torch.nonzero(self.central).ravel()
                pick = pool[torch.randperm(len(pool), generator=gen)[: self.pos_num]]
                labels[n, pick] = 0
                continue
            pos = torch.nonzero(iou[n] >= self.pos_iou).ravel()
            if len(pos) == 0:  # a large size change: the best anchor stands in
                pos = iou[n].argmax().reshape(1)
            pos = pos[torch.randperm(len(pos), generator=gen)[: self.pos_num]]
            neg = torch.nonzero(iou[n] < self.neg_iou).ravel()
            neg = neg[torch.randperm(len(neg), generator=gen)[: self.total_num - len(pos)]]
            labels[n, neg] = 0
            labels[n, pos] = 1
        return labels, rpn_deltas(x1, y1, x2, y2, px, py, aw, ah)

    def loss(self, cls: torch.Tensor, loc: torch.Tensor, labels: torch.Tensor, delta: torch.Tensor
             ) -> Tuple[torch.Tensor, torch.Tensor]:
        """(cls loss, loc loss) for outputs ``cls`` (N, 2, S, S) and ``loc`` (N, 4, S, S)."""
        n = cls.shape[0]
        cls_loss = balanced_ce(cls.reshape(n, 2, -1), labels)
        pos = (labels == 1).float()
        l1 = (loc.reshape(n, 4, -1) - delta).abs().sum(dim=1)
        loc_loss = (l1 * pos).sum() / pos.sum().clamp(min=1)
        return cls_loss, self.loc_weight * loc_loss


class BANTargets:
    """Point labels (ellipse rule) for a score map of side ``size``."""

    def __init__(self, stride: int, size: int, loc_weight: float = 1.0) -> None:
        points = generate_points(stride, size).astype(np.float64) + CENTER
        self.points = torch.from_numpy(points).float()  # (2, S*S)
        self.loc_weight = loc_weight

    def assign(self, boxes: torch.Tensor, negative: torch.Tensor, gen: torch.Generator, prior: torch.Tensor
               ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Labels (N, S*S) in {1, 0, -1} and distance targets (N, 4, S*S) in prior units."""
        px, py = self.points
        x1, y1, x2, y2 = (boxes[:, i:i + 1] for i in range(4))
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        w, h = (x2 - x1).clamp(min=1), (y2 - y1).clamp(min=1)
        inner = ((px - cx) / (w / 4)) ** 2 + ((py - cy) / (h / 4)) ** 2 <= 1
        outer = ((px - cx) / (w / 2)) ** 2 + ((py - cy) / (h / 2)) ** 2 <= 1
        labels = torch.full(inner.shape, -1, dtype=torch.long)
        labels[~outer] = 0
        labels[inner] = 1
        # a target narrower than the stride may hold no point: the nearest one inside it is positive
        empty = (labels == 1).sum(dim=1) == 0
        if empty.any():
            dist = (px - cx) ** 2 + (py - cy) ** 2
            nearest = dist.argmin(dim=1)
            rows = torch.nonzero(empty & ~negative).ravel()
            labels[rows, nearest[rows]] = 1
        labels[negative] = 0
        return labels, ban_distances(x1, y1, x2, y2, px, py, prior[:, 0:1], prior[:, 1:2])

    def loss(self, cls: torch.Tensor, loc: torch.Tensor, labels: torch.Tensor, dist: torch.Tensor
             ) -> Tuple[torch.Tensor, torch.Tensor]:
        """(cls loss, IoU loss) for ``cls`` (N, 2, S, S) and positive distances ``loc`` (N, 4, S, S)."""
        n = cls.shape[0]
        cls_loss = balanced_ce(cls.reshape(n, 2, -1), labels)
        pos = labels == 1
        pred = loc.reshape(n, 4, -1).permute(0, 2, 1)[pos]  # (P, 4) l, t, r, b
        target = dist.permute(0, 2, 1)[pos]
        if len(pred) == 0:
            return cls_loss, loc.sum() * 0
        return cls_loss, self.loc_weight * iou_loss(pred, target)


def rpn_deltas(x1, y1, x2, y2, px, py, aw, ah) -> torch.Tensor:
    """(N, 4, M) SiamRPN regression targets (dx/wa, dy/ha, log w/wa, log h/ha) of boxes given by their
    corners, at anchors centred on the points (``px``, ``py``) and shaped (``aw``, ``ah``); broadcast."""
    tw, th = (x2 - x1).clamp(min=1), (y2 - y1).clamp(min=1)
    parts = torch.broadcast_tensors(((x1 + x2) / 2 - px) / aw, ((y1 + y2) / 2 - py) / ah,
                                    torch.log(tw / aw), torch.log(th / ah))
    return torch.stack(parts, dim=1)


def ban_distances(x1, y1, x2, y2, px, py, aw, ah) -> torch.Tensor:
    """(N, 4, M) SiamBAN targets: left/top/right/bottom distances from the points (``px``, ``py``)
    to boxes given by their corners, in units of (``aw``, ``ah``); broadcast."""
    return torch.stack([(px - x1) / aw, (py - y1) / ah, (x2 - px) / aw, (y2 - py) / ah], dim=1)


def balanced_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over (N, 2, M) logits, positives and negatives averaged separately, half each."""
    logp = F.log_softmax(logits, dim=1)
    pos = labels == 1
    neg = labels == 0
    loss = logits.new_zeros(())
    if pos.any():
        loss = loss + 0.5 * -logp[:, 1][pos].mean()
    if neg.any():
        loss = loss + 0.5 * -logp[:, 0][neg].mean()
    return loss


def iou_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-ln IoU of boxes given as (left, top, right, bottom) distances from the same point."""
    pl, pt, pr, pb = pred.unbind(1)
    tl, tt, tr, tb = target.unbind(1)
    p_area = (pl + pr) * (pt + pb)
    t_area = (tl + tr) * (tt + tb)
    iw = torch.minimum(pl, tl) + torch.minimum(pr, tr)
    ih = torch.minimum(pt, tt) + torch.minimum(pb, tb)
    inter = iw.clamp(min=0) * ih.clamp(min=0)
    iou = (inter + 1.0) / (p_area + t_area - inter + 1.0)
    return -torch.log(iou).mean()


def distill_losses(family: str, cls: torch.Tensor, loc: torch.Tensor, prob: torch.Tensor, box: torch.Tensor,
                   prior: torch.Tensor, negative: torch.Tensor, points: torch.Tensor, confident: float = 0.6
                   ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Losses towards a teacher's outputs at the same points (:mod:`siamcli.training.teacher`).

    Classification: the Kullback-Leibler divergence of the student's target probability from
    the teacher's ``prob`` (N, M), per point, averaged (zero where the student matches it).
    Box: where the teacher is ``confident`` (and the pair is not a negative), its box
    ``box`` (N, 4, M, corners in patch pixels) in the head's own units relative to ``prior``:
    L1 on deltas for ``"rpn"``, -ln IoU on distances for ``"ban"``.
    """
    n = cls.shape[0]
    logq = F.log_softmax(cls.reshape(n, 2, -1), dim=1)
    p = prob.clamp(1e-6, 1 - 1e-6)
    kd_cls = (p * (torch.log(p) - logq[:, 1]) + (1 - p) * (torch.log(1 - p) - logq[:, 0])).mean()
    keep = (prob >= confident) & ~negative[:, None]
    if not keep.any():
        return kd_cls, loc.sum() * 0
    px, py = points
    aw, ah = prior[:, 0:1], prior[:, 1:2]
    x1, y1, x2, y2 = box.unbind(1)
    pred = loc.reshape(n, 4, -1).permute(0, 2, 1)[keep]
    if family == "rpn":
        goal = rpn_deltas(x1, y1, x2, y2, px, py, aw, ah).permute(0, 2, 1)[keep]
        return kd_cls, (pred - goal).abs().sum(dim=1).mean()
    goal = ban_distances(x1, y1, x2, y2, px, py, aw, ah).clamp(min=1e-3).permute(0, 2, 1)[keep]
    return kd_cls, iou_loss(pred, goal)
