"""Evaluation: ground-truth parsing, OTB metrics, and `siamcli eval` on a generated sequence."""
from __future__ import annotations

import json

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


def test_eval_compare_rejects_an_unknown_tracker(tmp_path, capsys, alex_weights):
    make_sequence(tmp_path / "data", "seq1", 3)
    with pytest.raises(SystemExit) as done:
        main(["eval", str(tmp_path / "data"), "--compare", "boosting", "-q"])
    assert done.value.code == 2
    assert "--compare takes an OpenCV baseline" in capsys.readouterr().err
