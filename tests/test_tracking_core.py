"""Unit tests of the tracker loop pieces on synthetic data: anchors, points, crop, decode, update."""
from __future__ import annotations

import math

import numpy as np
import pytest

from siamcli.errors import SiamcliError
from siamcli.tracking.anchors import anchor_shapes, cosine_window, generate_anchors, generate_points
from siamcli.tracking.crop import channel_mean, crop_patch
from siamcli.tracking.params import TrackerParams
from siamcli.tracking.tracker import SiameseTracker, validate_box


def test_anchor_shapes_match_the_published_sizes():
    shapes = anchor_shapes(8, (0.33, 0.5, 1, 2, 3), (8,))
    assert shapes.tolist() == [[104, 32], [88, 40], [64, 64], [40, 80], [32, 96]]


def test_anchors_are_anchor_major_on_a_centred_grid():
    a = generate_anchors(8, (0.33, 0.5, 1, 2, 3), (8,), 25)
    assert a.shape == (4, 5 * 625)
    # index k*S*S + y*S + x
    k, y, x = 3, 4, 7
    idx = k * 625 + y * 25 + x
    assert a[:, idx].tolist() == [-96 + 8 * x, -96 + 8 * y, 40, 80]
    assert a[0].min() == -96 and a[0].max() == 96


def test_points_are_row_major_from_minus_half_grid():
    p = generate_points(8, 25)
    assert p.shape == (2, 625)
    assert p[:, 0].tolist() == [-96, -96]
    assert p[:, 1].tolist() == [-88, -96]
    assert p[:, 25].tolist() == [-96, -88]
    q = generate_points(16, 16)
    assert q[0].min() == -128 and q[0].max() == 112


def test_cosine_window_is_tiled_per_anchor_with_zero_ends():
    w = cosine_window(21, 5)
    assert w.shape == (5 * 441,)
    assert w[0] == 0 and w[220] == pytest.approx(1.0)
    np.testing.assert_array_equal(w[:441], w[441:882])


def _padded_copy_crop(img, pos, model_sz, original_sz, avg):
    """The reference's way: pad a copy of the whole frame, then cut (oracle for the test)."""
    import cv2

    sz = original_sz
    c = (original_sz + 1) / 2
    xmin = math.floor(pos[0] - c + 0.5)
    ymin = math.floor(pos[1] - c + 0.5)
    xmax, ymax = xmin + sz - 1, ymin + sz - 1
    h, w = img.shape[:2]
    left, top = int(max(0, -xmin)), int(max(0, -ymin))
    right, bottom = int(max(0, xmax - w + 1)), int(max(0, ymax - h + 1))
    big = np.zeros((h + top + bottom, w + left + right, 3), np.uint8)
    big[top:top + h, left:left + w] = img
    big[:top, left:left + w] = avg
    big[top + h:, left:left + w] = avg
    big[:, :left] = avg
    big[:, left + w:] = avg
    patch = big[ymin + top:ymax + top + 1, xmin + left:xmax + left + 1]
    return cv2.resize(patch, (model_sz, model_sz)) if model_sz != original_sz else patch


@pytest.mark.parametrize("pos,size", [((160, 120), 101), ((10, 8), 150), ((315, 235), 77), ((-30, 260), 64),
                                      ((160.5, 119.5), 255), ((100, 100), 500)])
def test_crop_equals_a_padded_copy_of_the_frame(pos, size):
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    avg = channel_mean(img)
    ours = crop_patch(img, pos, 127, size, avg)
    ref = _padded_copy_crop(img, pos, 127, size, avg)
    assert ours.shape == (127, 127, 3)
    np.testing.assert_array_equal(ours, ref)


def test_crop_fill_is_the_truncated_channel_mean():
    img = np.zeros((50, 50, 3), np.uint8)
    img[:, :, 0] = 200
    img[:25, :, 1] = 101  # mean 50.5 -> 50
    patch = crop_patch(img, (0, 0), 20, 20, channel_mean(img))
    assert patch[0, 0].tolist() == [200, 50, 0]


class FakeEngine:
    """Returns a score map peaked at one cell and chosen deltas/distances."""

    name = "fake"
    precision = "fp32"
    crops_on_device = False
    max_instance_size = None

    def __init__(self, family, score_size, peak, loc_value, anchors=5):
        self.family, self.s, self.peak, self.loc_value, self.k = family, score_size, peak, loc_value, anchors
        self.templates = 0

    def template(self, patch):
        assert patch.shape == (127, 127, 3) and patch.dtype == np.uint8
        self.templates += 1
        return "zf"

    def track(self, patch, zf):
        assert zf == "zf"
        s = self.s
        k = self.k if self.family == "rpn" else 1
        cls = np.zeros((1, 2 * k, s, s), np.float32)
        y, x = self.peak
        cls[0, k + (2 if self.family == "rpn" else 0), y, x] = 8.0  # anchor 2 (ratio 1) or the point
        loc = np.full((1, 4 * k, s, s), self.loc_value, np.float32)
        return cls, loc


def test_rpn_update_moves_to_the_peak_anchor_and_smooths_size():
    params = TrackerParams(family="rpn", instance_size=255, base_size=8, penalty_k=0.0,
                           window_influence=0.0, lr=0.5)
    engine = FakeEngine("rpn", 25, peak=(12, 15), loc_value=0.0)
    tracker = SiameseTracker(engine, params)
    frame = np.full((480, 640, 3), 100, np.uint8)
    tracker.init(frame, (300, 200, 64, 64))
    s_z = math.sqrt((64 + 64) * (64 + 64))
    scale_z = 127 / s_z
    result = tracker.update(frame)
    # peak at x=15 on a grid from -96 step 8 -> +24 patch px right of the centre
    cx0 = 300 + 63 / 2
    expected_cx = cx0 + 24 / scale_z
    # anchor 64x64 in patch px = 64/scale_z frame px; lr = score*0.5
    score = 1 / (1 + math.exp(-8.0))
    lr = score * 0.5
    w = 64 * (1 - lr) + (64 / scale_z) * lr
    assert result.score == pytest.approx(score, rel=1e-6)
    assert result.box[2] == pytest.approx(w, rel=1e-6)
    assert result.box[0] + result.box[2] / 2 == pytest.approx(expected_cx, rel=1e-6)


def test_ban_update_decodes_ltrb_distances_around_the_point():
    params = TrackerParams(family="ban", penalty_k=0.0, window_influence=0.0, lr=1.0)
    engine = FakeEngine("ban", 25, peak=(12, 12), loc_value=32.0)
    tracker = SiameseTracker(engine, params)
    frame = np.full((480, 640, 3), 100, np.uint8)
    tracker.init(frame, (300, 200, 64, 64))
    result = tracker.update(frame)
    scale_z = 127 / 128
    score = 1 / (1 + math.exp(-8.0))
    w = 64 * (1 - score) + (64 / scale_z) * score
    assert result.box[2] == pytest.approx(w, rel=1e-6)
    assert result.box[3] == pytest.approx(w, rel=1e-6)
    assert result.box[0] + w / 2 == pytest.approx(300 + 63 / 2, abs=1e-6)


@pytest.mark.parametrize("aspect_lr", [0.0, 0.25])
def test_aspect_lr_moves_scale_and_aspect_apart_in_log_space(aspect_lr):
    params = TrackerParams(family="ban", penalty_k=0.0, window_influence=0.0, lr=0.5, aspect_lr=aspect_lr)
    engine = FakeEngine("ban", 25, peak=(12, 12), loc_value=32.0)  # a 64x64 patch-px candidate
    tracker = SiameseTracker(engine, params)
    frame = np.full((480, 640, 3), 100, np.uint8)
    tracker.init(frame, (300, 200, 64, 32))  # aspect 2, the candidate's is 1
    result = tracker.update(frame)
    scale_z = 127 / math.sqrt((64 + 48) * (32 + 48))
    rate = 1 / (1 + math.exp(-8.0))  # penalty 1 (k = 0) times the score
    log_w, log_h = math.log(64 / scale_z / 64), math.log(64 / scale_z / 32)
    scale = (log_w + log_h) / 2 * rate * 0.5
    aspect = (log_w - log_h) / 2 * rate * aspect_lr
    assert result.box[2] == pytest.approx(64 * math.exp(scale + aspect), rel=1e-9)
    assert result.box[3] == pytest.approx(32 * math.exp(scale - aspect), rel=1e-9)
    if aspect_lr == 0.0:
        assert result.box[2] / result.box[3] == pytest.approx(2.0, rel=1e-12)  # the first box's aspect kept
    else:
        assert result.box[2] / result.box[3] < 2.0


def test_aspect_lr_outside_zero_one_is_refused():
    with pytest.raises(ValueError, match="aspect_lr"):
        TrackerParams(aspect_lr=1.5)


def test_update_clips_the_centre_and_size_to_the_frame():
    params = TrackerParams(family="ban", penalty_k=0.0, window_influence=0.0, lr=1.0)
    engine = FakeEngine("ban", 25, peak=(0, 0), loc_value=1.0)  # far top-left, tiny box
    tracker = SiameseTracker(engine, params)
    frame = np.full((120, 160, 3), 100, np.uint8)
    tracker.init(frame, (2, 2, 20, 20))
    for _ in range(5):
        box = tracker.update(frame).box
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    assert cx >= 0 and cy >= 0
    assert box[2] >= 10 and box[3] >= 10


@pytest.mark.parametrize("box,msg", [((0, 0, 0, 10), "zero or negative"), ((10, 10, -5, 5), "zero or negative"),
                                     ((500, 10, 20, 20), "outside"), ((-50, -50, 20, 20), "outside"),
                                     ((1, 2, 3), "four numbers"), ((1, 2, float("nan"), 4), "non-finite")])
def test_bad_initial_boxes_are_refused(box, msg):
    with pytest.raises(SiamcliError, match=msg):
        validate_box(box, (240, 320, 3))


def test_update_before_init_is_a_bug_not_a_user_error():
    tracker = SiameseTracker(FakeEngine("ban", 25, (0, 0), 1.0), TrackerParams(family="ban"))
    with pytest.raises(RuntimeError):
        tracker.update(np.zeros((10, 10, 3), np.uint8))


def test_overflowing_network_outputs_never_produce_nan_boxes():
    class Overflowing(FakeEngine):
        def track(self, patch, zf):
            cls, loc = super().track(patch, zf)
            loc[0, :, 12, 12] = np.inf  # the peak cell decodes to an infinite box
            return cls, loc

    params = TrackerParams(family="ban", penalty_k=0.1, window_influence=0.4, lr=0.4)
    tracker = SiameseTracker(Overflowing("ban", 25, peak=(12, 12), loc_value=20.0), params)
    frame = np.full((240, 320, 3), 100, np.uint8)
    tracker.init(frame, (100, 100, 40, 40))
    box = tracker.update(frame).box
    assert np.all(np.isfinite(box))

    class AllBad(FakeEngine):
        def track(self, patch, zf):
            cls, loc = super().track(patch, zf)
            return cls, np.full_like(loc, np.nan)

    tracker = SiameseTracker(AllBad("ban", 25, peak=(12, 12), loc_value=1.0), params)
    tracker.init(frame, (100, 100, 40, 40))
    result = tracker.update(frame)
    assert result.box == pytest.approx((119.5 - 20, 119.5 - 20, 40, 40)) and result.score == 0.0


def test_a_finite_but_degenerate_peak_box_is_skipped_as_if_it_scored_nothing():
    """A peak cell whose box has negative width (finite score) loses to the best usable cell."""
    class Degenerate(FakeEngine):
        def track(self, patch, zf):
            cls, loc = super().track(patch, zf)
            loc[0, :, 12, 12] = -5.0  # x2 < x1 and y2 < y1 at the peak
            return cls, loc

    class NoPeak(FakeEngine):
        def track(self, patch, zf):
            cls, loc = super().track(patch, zf)
            cls[0, 1, 12, 12] = -50.0  # the peak cell can never win
            loc[0, :, 12, 12] = -5.0
            return cls, loc

    params = TrackerParams(family="ban", penalty_k=0.1, window_influence=0.4, lr=0.4)
    frame = np.full((240, 320, 3), 100, np.uint8)
    results = []
    for engine in (Degenerate("ban", 25, peak=(12, 12), loc_value=20.0), NoPeak("ban", 25, peak=(12, 12), loc_value=20.0)):
        tracker = SiameseTracker(engine, params)
        tracker.init(frame, (100, 100, 40, 40))
        results.append(tracker.update(frame))
    assert results[0].box == results[1].box and results[0].score == results[1].score
    assert results[0].box[2] > 0 and results[0].box[3] > 0


@pytest.mark.parametrize("pos,size", [((160, 120), 101), ((10, 8), 150), ((315, 235), 77), ((-30, 260), 64)])
def test_fast_crop_is_the_reference_inside_and_within_a_few_grey_levels_across_the_border(pos, size):
    from siamcli.tracking.crop import fast_patch, warp_patch

    rng = np.random.default_rng(2)
    img = cv2_blur(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8))
    avg = channel_mean(img)
    ref = crop_patch(img, pos, 127, size, avg)
    warped = warp_patch(img, pos, 127, size, avg)
    assert warped.shape == ref.shape
    assert np.abs(warped.astype(int) - ref.astype(int)).mean() < 1.0
    inside = 0 <= pos[0] - size / 2 and pos[0] + size / 2 <= 320 and 0 <= pos[1] - size / 2 and pos[1] + size / 2 <= 240
    if inside:
        np.testing.assert_array_equal(fast_patch(img, pos, 127, size, avg), ref)


def cv2_blur(img):
    import cv2

    return cv2.GaussianBlur(img, (9, 9), 3)


@pytest.mark.parametrize("family,units", [("rpn", "pixels"), ("rpn", "target"), ("ban", "pixels"), ("ban", "target")])
def test_decoders_read_boxes_as_the_published_trackers_do(family, units):
    """Each head family's decoder gives, for every candidate, the box the reference formulas give:
    anchors shifted by (dx, dy) times their size and scaled by exp(dw), exp(dh); points with their
    box edges the predicted distances away. With ``box_units == "target"`` the current size is the
    anchor (and the unit of the distances)."""
    from siamcli.tracking.decode import decoder_for

    stride, ratios = (8, (0.33, 0.5, 1.0, 2.0, 3.0)) if family == "rpn" and units == "pixels" else (16, (1.0,))
    params = TrackerParams(family=family, box_units=units, stride=stride, anchor_ratios=ratios)
    decoder = decoder_for(params)
    grid, _ = decoder.grid_and_window(params.score_size)
    rng = np.random.default_rng(3)
    count, prior = grid.shape[1], (37.0, 21.0)
    delta = rng.normal(size=(4, count)).astype(np.float32) * (0.3 if family == "rpn" else 5.0)
    got = decoder.boxes(delta, grid, prior)
    d = delta.astype(np.float64)
    if family == "rpn":
        aw, ah = (prior[0], prior[1]) if units == "target" else (grid[2], grid[3])
        want = [d[0] * aw + grid[0], d[1] * ah + grid[1], np.exp(d[2]) * aw, np.exp(d[3]) * ah]
    else:
        if units == "target":
            d = d * np.array([[prior[0]], [prior[1]], [prior[0]], [prior[1]]])
        x1, y1, x2, y2 = grid[0] - d[0], grid[1] - d[1], grid[0] + d[2], grid[1] + d[3]
        want = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]
    np.testing.assert_allclose(got, np.array(want), rtol=1e-12, atol=1e-9)


def test_changing_a_trackers_settings_changes_its_decoder():
    """The batch worker changes a built tracker's aspect_lr per job: the decoder must follow."""
    tracker = SiameseTracker(FakeEngine("ban", 25, (12, 12), 32.0), TrackerParams(family="ban"))
    tracker.params = tracker.params.tuned(aspect_lr=0.0, lr=1.0)
    assert tracker.decoder.params.aspect_lr == 0.0
    frame = np.full((480, 640, 3), 100, np.uint8)
    tracker.init(frame, (300, 200, 64, 32))
    result = tracker.update(frame)
    assert result.box[2] / result.box[3] == pytest.approx(2.0)  # aspect kept, scale moved
