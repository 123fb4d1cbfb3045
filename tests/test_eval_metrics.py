"""Evaluation: ground-truth parsing, OTB metrics, and `siamcli eval` on a generated sequence."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from siamcli.cli import main
from siamcli.errors import SiamcliError
from siamcli.eval.datasets import find_sequences, read_groundtruth
from siamcli.eval.metrics import iou, score_sequence, success_curve
from conftest import square_path, textured_frame


def test_iou_of_known_boxes():
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [5, 5, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [20, 20, 5, 5], [0, 0, 10, 10]])
    np.testing.assert_allclose(iou(a, b), [1.0, 50 / 150, 0.0, 25 / 175])


def test_success_curve_counts_iou_strictly_above_each_threshold():
    curve = success_curve(np.array([0.0, 0.5, 1.0]))
    assert len(curve) == 21
    assert curve[0] == pytest.approx(2 / 3)  # iou > 0
    assert curve[10] == pytest.approx(1 / 3)  # iou > 0.5
    assert curve[20] == 0.0  # iou > 1


def test_unannotated_frames_are_left_out_of_every_metric():
    gt = np.array([[10, 10, 20, 20], [0, 0, 0, 0], [10, 10, 20, 20], [5, 5, 0, 8]], float)
    pred = np.array([[10, 10, 20, 20], [300, 300, 5, 5], [10, 10, 20, 20], [100, 100, 5, 5]], float)
    m = score_sequence(pred, gt)
    assert m["frames_scored"] == 2
    assert m["mean_iou"] == 1.0 and m["success_auc"] == pytest.approx(20 / 21) and m["precision_20px"] == 1.0


def test_precision_uses_centre_error_within_20px():
    gt = np.array([[0, 0, 10, 10]] * 2, float)
    pred = np.array([[20, 0, 10, 10], [21, 0, 10, 10]], float)
    assert score_sequence(pred, gt)["precision_20px"] == 0.5


def test_groundtruth_with_commas_tabs_and_spaces(tmp_path):
    path = tmp_path / "groundtruth_rect.txt"
    path.write_text("1,2,3,4\n5\t6\t7\t8\n9 10 11 12\n13, 14,\t15 16\n\n")
    np.testing.assert_array_equal(read_groundtruth(path), [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12],
                                                           [13, 14, 15, 16]])


@pytest.mark.parametrize("text,msg", [("1,2,3\n", "expected 4 numbers"), ("a,b,c,d\n", "not a box"), ("\n", "no boxes")])
def test_malformed_groundtruth_is_reported_with_its_line(tmp_path, text, msg):
    path = tmp_path / "groundtruth_rect.txt"
    path.write_text(text)
    with pytest.raises(SiamcliError, match=msg):
        read_groundtruth(path)


def make_sequence(root, name, n=10):
    seq = root / name
    (seq / "img").mkdir(parents=True)
    lines = []
    for i, (x, y) in enumerate(square_path(n)):
        cv2.imwrite(str(seq / "img" / f"{i + 1:04d}.jpg"), textured_frame(320, 240, x, y, 40, seed=i))
        lines.append(f"{x}\t{y}\t40\t40" if i != 3 else "0,0,0,0")
    (seq / "groundtruth_rect.txt").write_text("\n".join(lines) + "\n")
    return seq


def test_find_sequences_in_a_folder_of_sequences(tmp_path):
    make_sequence(tmp_path, "b_seq", 4)
    make_sequence(tmp_path, "a_seq", 5)
    (tmp_path / "not_a_sequence").mkdir()
    seqs = find_sequences(tmp_path)
    assert [s.name for s in seqs] == ["a_seq", "b_seq"]
    assert len(seqs[0]) == 5 and seqs[0].groundtruth.shape == (5, 4)
    with pytest.raises(SiamcliError, match="no OTB-style sequences"):
        find_sequences(tmp_path / "not_a_sequence")


def test_eval_command_prints_and_writes_the_table(tmp_path, capsys, alex_weights):
    make_sequence(tmp_path / "data", "seq1", 6)
    make_sequence(tmp_path / "data", "seq2", 5)
    out = tmp_path / "r.json"
    with pytest.raises(SystemExit) as done:
        main(["eval", str(tmp_path / "data"), "-m", "siamrpn_alex_dwxcorr", "-w", str(alex_weights),
              "--json", str(out), "-q"])
        raise SystemExit(0)
    assert done.value.code == 0
    printed = capsys.readouterr().out
    assert "seq1" in printed and "seq2" in printed and "overall" in printed
    doc = json.loads(out.read_text())
    assert doc["model"] == "siamrpn_alex_dwxcorr"
    assert [s["name"] for s in doc["sequences"]] == ["seq1", "seq2"]
    assert doc["sequences"][0]["frames_scored"] == 5  # the 0,0,0,0 frame is not scored
    for s in doc["sequences"]:
        assert 0 <= s["success_auc"] <= 1 and 0 <= s["mean_iou"] <= 1 and s["fps"] > 0
    assert doc["overall"]["mean_iou"] == pytest.approx(np.mean([s["mean_iou"] for s in doc["sequences"]]))


def test_eval_compare_and_report_on_a_generated_sequence(tmp_path, capsys, alex_weights):
    make_sequence(tmp_path / "data", "seq1", 6)
    out = tmp_path / "r.json"
    with pytest.raises(SystemExit) as done:
        main(["eval", str(tmp_path / "data"), "-m", "siamrpn_alex_dwxcorr", "-w", str(alex_weights), "--engine", "torch",
              "--compare", "mil", "--compare", f"siamrpn_alex_dwxcorr_otb={alex_weights}",
              "--report", str(tmp_path / "report"), "--json", str(out), "-q"])
        raise SystemExit(0)
    assert done.value.code == 0, capsys.readouterr().err
    doc = json.loads(out.read_text())
    assert doc["tracker"] == "siamrpn_alex_dwxcorr"
    assert [d["tracker"] for d in doc["compared"]] == ["opencv_mil", "siamrpn_alex_dwxcorr_otb"]
    assert all(d["sequences"][0]["frames_scored"] == 5 for d in doc["compared"])
    html = (tmp_path / "report" / "index.html").read_text()
    assert "opencv_mil" in html and (tmp_path / "report" / "success_plot.png").stat().st_size > 1000


def test_eval_json_and_report_record_what_each_tracker_ran(tmp_path, capsys, alex_weights):
    """Model, weights (file name and sha256), engine, precision and siamcli's version for every tracker
    compared, in the JSON and in the report's overall table and page."""
    import csv
    import hashlib
    from importlib.metadata import version

    make_sequence(tmp_path / "data", "seq1", 5)
    out = tmp_path / "r.json"
    with pytest.raises(SystemExit) as done:
        main(["eval", str(tmp_path / "data"), "-m", "siamrpn_alex_dwxcorr", "-w", str(alex_weights), "--engine", "torch",
              "--precision", "fp32", "--compare", "mil", "--compare", f"siamrpn_alex_dwxcorr_otb={alex_weights}",
              "--report", str(tmp_path / "report"), "--json", str(out), "-q"])
        raise SystemExit(0)
    assert done.value.code == 0, capsys.readouterr().err
    digest = hashlib.sha256(Path(alex_weights).read_bytes()).hexdigest()
    doc = json.loads(out.read_text())
    ours = [doc, doc["compared"][1]]
    for d, model in zip(ours, ("siamrpn_alex_dwxcorr", "siamrpn_alex_dwxcorr_otb")):
        assert d["model"] == model and d["weights"] == [{"file": Path(alex_weights).name, "sha256": digest}]
        assert d["engine"].startswith("torch-cpu") and d["precision"] == "fp32" and d["siamcli"] == version("siamcli")
    mil = doc["compared"][0]
    assert mil["model"] == "opencv_mil" and mil["weights"] == [] and mil["engine"] == f"opencv {cv2.__version__}"
    rows = {r["tracker"]: r for r in csv.DictReader(open(tmp_path / "report" / "overall.csv"))}
    assert rows["siamrpn_alex_dwxcorr_otb"]["weights_sha256"] == digest
    assert rows["siamrpn_alex_dwxcorr"]["engine"] == doc["engine"] and rows["opencv_mil"]["weights"] == ""
    assert {r["siamcli"] for r in rows.values()} == {version("siamcli")}
    html = (tmp_path / "report" / "index.html").read_text()
    assert f"{Path(alex_weights).name} (sha256 {digest[:12]})" in html and "Trackers" in html


def test_eval_compare_rejects_an_unknown_tracker(tmp_path, capsys, alex_weights):
    make_sequence(tmp_path / "data", "seq1", 3)
    with pytest.raises(SystemExit) as done:
        main(["eval", str(tmp_path / "data"), "--compare", "boosting", "-q"])
    assert done.value.code == 2
    assert "--compare takes an OpenCV baseline" in capsys.readouterr().err


def test_robustness_runs_spread_starts_over_annotated_frames_and_perturb_the_first_box(tmp_path):
    from siamcli.eval.runner import SRE_SCALES, robustness_runs, sre_boxes

    seq = find_sequences(make_sequence(tmp_path, "seq", 10))[0]  # frame 3 is not annotated
    assert robustness_runs(seq) == [(0, tuple(seq.groundtruth[0]))]  # one pass
    assert [f for f, _ in robustness_runs(seq, starts=4)] == [0, 2, 5, 7]
    frames = [f for f, _ in robustness_runs(seq, starts=20)]
    assert frames == [0, 1, 2, 4, 5, 6, 7, 8]  # 3 unannotated, each start once, none on the last frame
    for f, box in robustness_runs(seq, starts=4):
        assert box == tuple(seq.groundtruth[f])
    shifted = sre_boxes((100, 50, 40, 20))
    assert len(shifted) == 12 and shifted[0] == pytest.approx((96, 50, 40, 20))
    assert shifted[7] == pytest.approx((104, 52, 40, 20))
    for (x, y, w, h), s in zip(shifted[8:], SRE_SCALES):
        assert (x + w / 2, y + h / 2, w, h) == pytest.approx((120, 60, 40 * s, 20 * s))
    runs = robustness_runs(seq, starts=2, shifts=True)
    assert len(runs) == 24 and {f for f, _ in runs} == {0, 5}
    with pytest.raises(SiamcliError, match="at least 1"):
        robustness_runs(seq, starts=0)


class _StayingTracker:
    """Keeps its first box: its score on each run is that box against the ground truth."""

    def __init__(self):
        self.inits = []

    def init(self, frame, box):
        self.inits.append(tuple(float(v) for v in box))
        self.box = tuple(float(v) for v in box)

    def update(self, frame):
        from siamcli.tracking.tracker import TrackResult

        return TrackResult(self.box, 1.0)


def test_robustness_figures_are_the_mean_over_the_runs(tmp_path):
    from siamcli.eval.runner import robustness_runs, summarise, track_runs

    seq = find_sequences(make_sequence(tmp_path, "seq", 10))[0]
    runs = robustness_runs(seq, starts=3, shifts=True)
    tracker = _StayingTracker()
    result = track_runs(tracker, seq, runs)
    assert tracker.inits == [box for _, box in runs] and result.runs == 36
    expected = [score_sequence(np.tile(box, (len(seq) - f, 1)), seq.groundtruth[f:]) for f, box in runs]
    for key in ("mean_iou", "success_auc", "precision_20px"):
        assert result.metrics[key] == pytest.approx(np.mean([e[key] for e in expected]))
    assert result.metrics["mean_iou"] < 0.9  # the square moves away from the boxes that stay
    assert result.tracked == sum(len(seq) - f - 1 for f, _ in runs)
    one = track_runs(_StayingTracker(), seq, robustness_runs(seq))
    assert one.runs == 1 and one.tracked == 9
    assert summarise([result, one])["mean_iou"] == pytest.approx((result.metrics["mean_iou"]
                                                                  + one.metrics["mean_iou"]) / 2)


class _FrameRecorder(_StayingTracker):
    """Records a checksum of every frame it is given, in order."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def update(self, frame):
        self.seen.append(int(frame.astype(np.int64).sum()))
        return super().update(frame)


def test_runner_gets_every_frame_in_order_and_stops_on_one_it_cannot_decode(tmp_path, capsys):
    """Frames are decoded ahead in a second thread: the tracker still sees each one once, in order, and
    a frame that cannot be decoded ends the run as a user error naming the file (eval: exit 2)."""
    from siamcli.eval.runner import track_sequence

    root = tmp_path / "data"
    seq = find_sequences(make_sequence(root, "seq", 12))[0]
    recorder = _FrameRecorder()
    result = track_sequence(recorder, seq, start=2, box=(1, 2, 40, 40))
    assert recorder.inits == [(1.0, 2.0, 40.0, 40.0)]
    assert recorder.seen == [int(cv2.imread(str(p)).astype(np.int64).sum()) for p in seq.frames[3:]]
    assert result.tracked == 9 and np.all(result.boxes[2:] == [1, 2, 40, 40]) and np.all(result.boxes[:2] == 0)

    seq.frames[6].write_bytes(b"not a jpeg")
    with pytest.raises(SiamcliError, match="cannot decode .*0007.jpg"):
        track_sequence(_FrameRecorder(), seq)
    with pytest.raises(SystemExit) as done:
        main(["eval", str(root), "--compare", "mil", "-q"])
    err = capsys.readouterr().err
    assert done.value.code == 2 and "cannot decode" in err and "0007.jpg" in err and "Traceback" not in err


def test_eval_starts_and_sre_from_the_command_line(tmp_path, capsys):
    make_sequence(tmp_path / "data", "seq1", 8)
    out = tmp_path / "r.json"
    with pytest.raises(SystemExit) as done:
        main(["eval", str(tmp_path / "data"), "--compare", "mil", "--starts", "3", "--sre", "--json", str(out),
              "-q"])
        raise SystemExit(0)
    assert done.value.code == 0, capsys.readouterr().err
    assert "runs" in capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert doc["protocol"] == {"starts": 3, "sre": True, "name": "TRE+SRE"}
    assert doc["sequences"][0]["runs"] == 36
    with pytest.raises(SystemExit) as done:
        main(["eval", str(tmp_path / "data"), "--compare", "mil", "--starts", "2", "--report", str(tmp_path / "rep")])
    assert done.value.code == 2
    assert "--report plots one-pass results" in capsys.readouterr().err
    with pytest.raises(SystemExit) as done:
        main(["eval", str(tmp_path / "data"), "--compare", "mil", "--starts", "0"])
    assert done.value.code == 2
