"""The best candidate picked on the engine's device (siamcli.engines.device_select) is the one
SiameseTracker.pick finds in numpy, for anchors and points, absolute and relative boxes."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from conftest import require_shared
from siamcli.api import create_tracker
from siamcli.catalog import get_spec
from siamcli.engines.torch_engine import TorchEngine
from siamcli.eval.datasets import find_sequences
from siamcli.tracking.multi import MultiTracker
from siamcli.tracking.tracker import SiameseTracker

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
# anchors absolute (alex), anchors relative (bundled siamrpn), points relative (bundled siamban),
# points absolute (NanoTrack)
MODELS = ["siamrpn_alex_dwxcorr", "siamrpn", "siamban", "nanotrack_v2"]


def tracker_at(model: str, size=(60.0, 40.0)) -> SiameseTracker:
    tracker = SiameseTracker(engine=None, params=get_spec(model).params)
    tracker.center = np.array([200.0, 150.0])
    tracker.size = np.array(size)
    return tracker


def outputs(tracker: SiameseTracker, count: int, seed: int):
    """Network-like outputs: logits, and loc deltas of a plausible magnitude."""
    p = tracker.params
    rng = np.random.default_rng(seed)
    side = p.score_size
    cls = rng.normal(0, 2, (count, 2 * p.anchor_num, side, side)).astype(np.float32)
    if p.family == "rpn":
        loc = rng.normal(0, 0.3, (count, 4 * p.anchor_num, side, side)).astype(np.float32)
    else:  # positive distances: in target units when relative, else in pixels
        scale = 0.5 if p.box_units == "target" else 30.0
        loc = rng.uniform(0.2, 1.0, (count, 4, side, side)).astype(np.float32) * scale
    return cls, loc


def device_rows(tracker, cls, loc, influence, targets=None):
    select = tracker.selection(targets or [tracker], influence)
    selector = select.factory(int(cls.shape[-1]))
    with torch.inference_mode():
        return selector(torch.from_numpy(cls), torch.from_numpy(loc), torch.from_numpy(select.states)).numpy()


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("influence", [0.0, 0.44])
def test_the_device_selector_picks_the_box_numpy_picks(model, influence):
    tracker = tracker_at(model)
    scale_z = tracker._scale()
    for seed in range(5):
        cls, loc = outputs(tracker, 1, seed)
        want = tracker.pick(cls[0], loc[0], scale_z, influence)
        got = tracker.finish(device_rows(tracker, cls, loc, influence)[0], scale_z)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("model", ["siamrpn_alex_dwxcorr", "siamban"])
def test_unusable_candidates_never_win_and_none_usable_keeps_the_target(model):
    tracker = tracker_at(model)
    scale_z = tracker._scale()
    cls, loc = outputs(tracker, 1, 7)
    best = int(np.argmax(cls[0].reshape(2, -1)[1] - cls[0].reshape(2, -1)[0]))
    flat = loc[0].reshape(4, -1)
    flat[2, best] = np.inf if tracker.params.family == "rpn" else np.nan  # the top score's box is broken
    want = tracker.pick(cls[0], loc[0], scale_z, 0.3)
    got = tracker.finish(device_rows(tracker, cls, loc, 0.3)[0], scale_z)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)
    loc[:] = np.nan
    kept = (200.0, 150.0, 60.0, 40.0, 0.0)
    assert tracker.pick(cls[0], loc[0], scale_z, 0.3) == kept
    assert tracker.finish(device_rows(tracker, cls, loc, 0.3)[0], scale_z) == kept


def test_each_sample_is_picked_with_its_own_state():
    targets = [tracker_at("siamrpn", size) for size in ((60.0, 40.0), (20.0, 50.0), (90.0, 90.0))]
    cls, loc = outputs(targets[0], 3, 11)
    rows = device_rows(targets[0], cls, loc, 0.4, targets)
    for i, t in enumerate(targets):
        want = t.pick(cls[i], loc[i], t._scale(), 0.4)
        np.testing.assert_allclose(t.finish(rows[i], t._scale()), want, rtol=1e-5, atol=1e-3)


@pytest.mark.shared_data
def test_tracking_with_the_pick_on_the_device_follows_the_host_pick():
    """Crossing, 40 frames, the bundled siamrpn with the crop on the engine's device: picking there
    (float32) or on the host (numpy, float64) gives the same boxes."""
    seq = find_sequences(require_shared("data", "seqs", "otb_Crossing"))[0]
    frames = [cv2.imread(str(f)) for f in seq.frames[:40]]
    boxes = {}
    for on_device in (False, True):
        tracker, spec = create_tracker("siamrpn", device="cpu")
        tracker.engine = TorchEngine(tracker.engine.model, device="cpu", device_crop=True, device_select=on_device)
        assert tracker.engine.device_select is on_device
        tracker.init(frames[0], seq.groundtruth[0])
        boxes[on_device] = np.array([tracker.update(f).box for f in frames[1:]])
    np.testing.assert_allclose(boxes[True], boxes[False], atol=0.01)


def test_several_targets_picked_on_the_device_match_separate_trackers(alex_weights, synthetic_video):
    tracker, spec = create_tracker("siamrpn_alex_dwxcorr", weights=alex_weights, device="cpu")
    engine = TorchEngine(tracker.engine.model, device="cpu", device_crop=True, device_select=True)
    cap = cv2.VideoCapture(str(synthetic_video))
    frames = [cap.read()[1] for _ in range(4)]
    boxes = [(40, 30, 40, 40), (150, 100, 60, 50)]
    multi = MultiTracker(engine, spec.params)
    multi.init(frames[0], boxes)
    together = np.array([[r.box for r in multi.update(f)] for f in frames[1:]])
    for k, box in enumerate(boxes):
        alone = SiameseTracker(engine, spec.params)
        alone.init(frames[0], box)
        np.testing.assert_allclose(together[:, k], [alone.update(f).box for f in frames[1:]], atol=1e-2)


def test_device_select_needs_the_device_crop():
    from siamcli.models.registry import build_model

    engine = TorchEngine(build_model("siamrpn_alex_dwxcorr"), device="cpu", device_select=True)
    assert engine.device_crop is False and engine.device_select is False


@cuda
def test_cuda_graph_with_the_pick_inside_matches_eager():
    torch.manual_seed(0)
    tracker, spec = create_tracker("siamrpn", device="cuda")
    network = tracker.engine.model
    frame = cv2.resize(np.random.default_rng(0).integers(0, 256, (45, 60, 3), dtype=np.uint8), (480, 360))
    results = {}
    for graphs in (False, True):
        t = SiameseTracker(TorchEngine(network, device="cuda", cuda_graphs=graphs, device_select=True), spec.params)
        t.init(frame, (200, 150, 60, 40))
        results[graphs] = [t.update(np.roll(frame, 3 * i, axis=1)).box for i in range(4)]
    np.testing.assert_allclose(results[True], results[False], atol=1e-3)


def test_left_to_the_tracker_the_pick_goes_to_the_device_for_large_score_maps_only():
    from siamcli.tracking.tracker import DEVICE_SELECT_CANDIDATES, picks_on_device

    class Engine:
        device_select = None

    assert picks_on_device(Engine(), 2205) and not picks_on_device(Engine(), 625)
    assert DEVICE_SELECT_CANDIDATES == 1000
    Engine.device_select = False
    assert not picks_on_device(Engine(), 5000)
    Engine.device_select = True
    assert picks_on_device(Engine(), 121)
    assert not picks_on_device(object(), 5000)  # engines that cannot pick (onnx, host crop)
