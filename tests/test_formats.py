"""Box files: csv, json, mot and otb writers, and the first box read from --init-file."""
from __future__ import annotations

import json

import pytest

from siamcli.errors import SiamcliError
from siamcli.io.boxes import read_box_file
from siamcli.io.writers import box_format, open_box_writer
from test_cli_track import read_rows, run_cli

ROWS = [(0, (10.0, 20.0, 30.0, 40.0), 1.0, "tracking"), (1, (11.5, 21.25, 30.0, 41.0), 0.5, "lost")]


@pytest.mark.parametrize("fmt,expected", [
    ("otb", "10.0000,20.0000,30.0000,40.0000\n11.5000,21.2500,30.0000,41.0000\n"),
    ("mot", "1,1,10.0000,20.0000,30.0000,40.0000,1.000000,-1,-1,-1\n"
            "2,1,11.5000,21.2500,30.0000,41.0000,0.500000,-1,-1,-1\n"),
    ("csv", "frame,x,y,w,h,score,state\n0,10.0000,20.0000,30.0000,40.0000,1.000000,tracking\n"
            "1,11.5000,21.2500,30.0000,41.0000,0.500000,lost\n"),
])
def test_line_formats_write_one_line_per_frame(tmp_path, fmt, expected):
    path = tmp_path / f"boxes.{fmt}"
    with open_box_writer(path, fmt) as w:
        for row in ROWS:
            w.write(*row)
    assert path.read_bytes().decode() == expected


def test_json_is_a_valid_document_after_close_and_lines_are_on_disk_before(tmp_path):
    path = tmp_path / "b.json"
    w = open_box_writer(path)
    w.write(*ROWS[0])
    assert '"frame": 0' in path.read_text()  # flushed before close
    w.write(*ROWS[1])
    w.close()
    doc = json.loads(path.read_text())
    assert doc["frames"] == [{"frame": 0, "box": [10.0, 20.0, 30.0, 40.0], "score": 1.0, "state": "tracking"},
                             {"frame": 1, "box": [11.5, 21.25, 30.0, 41.0], "score": 0.5, "state": "lost"}]


def test_format_follows_json_suffix_and_defaults_to_csv():
    assert box_format("a.json", None) == "json" and box_format("a.txt", None) == "csv"
    assert box_format("a.json", "otb") == "otb"


def test_init_file_takes_the_first_box_line(tmp_path):
    (tmp_path / "gt.txt").write_text("# first box\n12\t30\t40\t50\n1,2,3,4\n")
    assert read_box_file(tmp_path / "gt.txt") == (12.0, 30.0, 40.0, 50.0)
    (tmp_path / "bad.txt").write_text("12,30\n")
    with pytest.raises(SiamcliError, match="bad.txt"):
        read_box_file(tmp_path / "bad.txt")


def test_track_writes_mot_from_an_init_file(tmp_path, capsys, frame_folder, alex_weights):
    (tmp_path / "first_box.txt").write_text("40,30,40,40\n")
    out = tmp_path / "b.txt"
    code, _, err = run_cli(["track", frame_folder, "-m", "siamrpn_alex_dwxcorr", "-w", alex_weights,
                            "--init-file", tmp_path / "first_box.txt", "-o", out, "--format", "mot",
                            "--max-frames", "4", "-q"], capsys)
    assert code == 0, err
    rows = read_rows(out)
    assert [r[:2] for r in rows] == [["1", "1"], ["2", "1"], ["3", "1"], ["4", "1"]]
    assert [float(v) for v in rows[0][2:6]] == [40.0, 30.0, 40.0, 40.0] and rows[0][7:] == ["-1", "-1", "-1"]


def test_init_and_init_file_together_is_one_error_line(tmp_path, capsys, frame_folder, alex_weights):
    (tmp_path / "f.txt").write_text("1,2,3,4\n")
    code, _, err = run_cli(["track", frame_folder, "-m", "siamrpn_alex_dwxcorr", "-w", alex_weights,
                            "--init", "1,2,3,4", "--init-file", tmp_path / "f.txt", "-q"], capsys)
    assert code == 2 and err.strip() == "siamcli: error: give either --init or --init-file, not both"
