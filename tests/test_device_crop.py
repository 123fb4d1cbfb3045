"""Search crops sampled on the engine's device (siamcli.engines.device_crop): the same squares as
the host crop, the same boxes through the tracker, and the CUDA-graph path on a GPU."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from conftest import require_shared
from siamcli.api import create_tracker
from siamcli.bench import TimedEngine
from siamcli.engines.device_crop import fill_colours, region_params, sample_squares
from siamcli.engines.torch_engine import TorchEngine
from siamcli.errors import SiamcliError
from siamcli.eval.datasets import find_sequences
from siamcli.eval.metrics import iou
from siamcli.tracking.crop import channel_mean, crop_patch, square
from siamcli.tracking.multi import MultiTracker
from siamcli.tracking.tracker import SiameseTracker

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")


def frame_and_mean(seed=0, shape=(240, 320)):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (shape[0] // 8, shape[1] // 8, 3), dtype=np.uint8)
    frame = cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)  # smooth, like a photo
    return frame, channel_mean(frame)


def device_crops(frame, centres, sizes, model_size, fill, rgb=False):
    regions = [square(c, s) for c, s in zip(centres, sizes)]
    out = sample_squares(torch.from_numpy(frame), torch.from_numpy(region_params(regions, model_size)),
                         torch.from_numpy(fill_colours([fill] * len(regions), rgb)), model_size, rgb)
    return out.permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("centre,size,model_size", [
    ((160, 120), 255, 255),   # inside, no resize: an exact copy
    ((20, 15), 255, 255),     # across the corner, no resize: copy + fill
    ((160, 120), 300, 255),   # inside, shrunk
    ((300, 200), 180, 255),   # across the border, enlarged
    ((-30, 260), 120, 127),   # centre outside the frame
])
def test_device_crop_matches_the_reference_crop(centre, size, model_size):
    frame, avg = frame_and_mean()
    want = crop_patch(frame, centre, model_size, size, avg).astype(np.float32)
    got = device_crops(frame, [centre], [size], model_size, avg)[0]
    assert got.shape == want.shape and got.dtype == np.float32
    diff = np.abs(got - want)
    if size == model_size:
        assert diff.max() == 0
    else:
        # cv2.resize rounds with fixed-point weights and repeats the square's own edge pixels;
        # inside the edge the two agree to a grey level
        assert diff[1:-1, 1:-1].max() <= 1 and (diff[1:-1, 1:-1] == 0).mean() > 0.8


def test_device_crop_fills_outside_with_the_truncated_mean_and_swaps_to_rgb():
    frame, _ = frame_and_mean(seed=1)
    fill = np.array([10.7, 200.2, 99.9])  # B, G, R; the reference truncates to uint8
    got = device_crops(frame, [(-500, -500)], [64], 64, fill, rgb=True)[0]
    assert (got == np.array([99, 200, 10], dtype=np.float32)).all()
    bgr = device_crops(frame, [(100, 100)], [64], 64, fill)[0]
    rgb = device_crops(frame, [(100, 100)], [64], 64, fill, rgb=True)[0]
    np.testing.assert_array_equal(rgb, bgr[..., ::-1])


def test_several_squares_in_one_call_equal_one_at_a_time():
    frame, avg = frame_and_mean(seed=2)
    centres, sizes = [(50, 60), (300, 20), (160, 120)], [100, 250, 40]
    together = device_crops(frame, centres, sizes, 127, avg)
    for i, (c, s) in enumerate(zip(centres, sizes)):
        np.testing.assert_array_equal(together[i], device_crops(frame, [c], [s], 127, avg)[0])


def test_engine_track_regions_equals_track_on_the_host_crop():
    torch.manual_seed(0)
    from siamcli.catalog import build_model

    engine = TorchEngine(build_model("siamrpn_alex_dwxcorr"), device="cpu", device_crop=True)
    frame, avg = frame_and_mean(seed=3, shape=(360, 480))
    zf = engine.template(crop_patch(frame, (240, 180), 127, 140, avg))
    centre, size = (250, 170), 287  # no resize: host and device crops are the same pixels
    cls, loc = engine.track_regions(frame, [square(centre, size)], 287, [avg], False, zf)
    want_cls, want_loc = engine.track(crop_patch(frame, centre, 287, size, avg), zf)
    np.testing.assert_allclose(cls, want_cls, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(loc, want_loc, rtol=1e-4, atol=1e-4)
    host = TorchEngine(engine.model, device="cpu")
    assert host.crops_on_device is False  # on a CPU the crop stays on the host unless asked for
    with pytest.raises(SiamcliError, match="crops on the host"):
        host.track_regions(frame, [square(centre, size)], 287, [avg], False, zf)


@pytest.mark.shared_data
@pytest.mark.parametrize("model", ["siamrpn", "nanotrack_v2"])
def test_tracker_with_the_device_crop_follows_the_host_crop_on_a_real_sequence(model):
    """Crossing, 60 frames: the tracker hands the engine whole frames (timed as network), and
    the boxes stay with the host crop's (the inputs differ only by interpolation rounding)."""
    seq = find_sequences(require_shared("data", "seqs", "otb_Crossing"))[0]
    weights = (require_shared("data", "weights", "nanotrack", "v2", "nanotrackv2.pth")
               if model == "nanotrack_v2" else None)
    frames = [cv2.imread(str(f)) for f in seq.frames[:60]]
    boxes = {}
    for on_device in (False, True):
        tracker, _ = create_tracker(model, weights=weights, device="cpu")
        tracker.engine.crops_on_device = on_device
        timed = tracker.engine = TimedEngine(tracker.engine)
        tracker.init(frames[0], seq.groundtruth[0])
        boxes[on_device] = np.array([tracker.update(f).box for f in frames[1:]])
        assert timed.end > timed.start > 0  # track or track_regions went through the timer
    # the crops differ by interpolation rounding, which a model with a fast size update (lr 0.4)
    # carries for some frames; both must still follow the target alike and overlap each other
    gt = seq.groundtruth[1:60]
    follow = {on: float(np.mean(iou(boxes[on], gt))) for on in boxes}
    assert min(follow.values()) > 0.5 and abs(follow[True] - follow[False]) < 0.1, follow
    assert np.median(iou(boxes[True], boxes[False])) > 0.75
    assert np.abs(boxes[True][:5] - boxes[False][:5]).max() < 1.5  # before any drift: the same boxes


def test_multi_tracker_with_the_device_crop_matches_separate_trackers(alex_weights, synthetic_video):
    tracker, spec = create_tracker("siamrpn_alex_dwxcorr", weights=alex_weights, device="cpu")
    tracker.engine.crops_on_device = True
    cap = cv2.VideoCapture(str(synthetic_video))
    frames = [cap.read()[1] for _ in range(4)]
    boxes = [(40, 30, 40, 40), (150, 100, 60, 50)]
    multi = MultiTracker(tracker.engine, spec.params)
    multi.init(frames[0], boxes)
    together = np.array([[r.box for r in multi.update(f)] for f in frames[1:]])
    for k, box in enumerate(boxes):
        alone = SiameseTracker(tracker.engine, spec.params)
        alone.init(frames[0], box)
        np.testing.assert_allclose(together[:, k], [alone.update(f).box for f in frames[1:]], atol=1e-2)


@cuda
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_cuda_graph_with_the_crop_inside_matches_eager_and_follows_new_frames_and_templates(precision):
    torch.manual_seed(0)
    from siamcli.catalog import build_model

    network = build_model("siamrpn_alex_dwxcorr")
    eager = TorchEngine(network, device="cuda", precision=precision)
    graphs = TorchEngine(network, device="cuda", precision=precision, cuda_graphs=True)
    assert eager.crops_on_device and graphs.crops_on_device  # the CUDA default
    tol = 1e-3 if precision == "fp32" else 2e-2
    for seed in range(3):  # new frames, squares and templates: the graph must read each of them
        frame, avg = frame_and_mean(seed=seed, shape=(360, 480))
        z = crop_patch(frame, (200 + seed * 20, 180), 127, 150, avg)
        region = [square((220 + seed * 30, 170), 287 + seed * 40)]
        got = graphs.track_regions(frame, region, 287, [avg], False, graphs.template(z))
        want = eager.track_regions(frame, region, 287, [avg], False, eager.template(z))
        for g, w in zip(got, want):
            assert np.abs(g - w).max() <= tol * max(1.0, np.abs(w).max())


def test_recent_cache_keeps_the_most_recently_used_entries():
    from siamcli.engines.torch_engine import RecentCache

    cache = RecentCache(2)
    cache["a"], cache["b"] = 1, 2
    assert cache.get("a") == 1  # a use: "b" is now the oldest
    cache["c"] = 3
    assert list(cache) == ["a", "c"] and cache.get("b") is None


@cuda
def test_engine_keeps_a_bounded_number_of_pinned_frame_buffers():
    from siamcli.engines.torch_engine import KEPT_GRAPHS

    engine = TorchEngine(torch.nn.Identity(), device="cuda")
    for width in range(3 * KEPT_GRAPHS):  # frames of ever new sizes, as an eval over many sources
        engine._host(np.zeros((4, 8 + width, 3), dtype=np.uint8))
    assert len(engine._pinned) == 2 * KEPT_GRAPHS
