"""siamcli bench: per-stage medians, end-to-end fps and a baseline from one run (figures are not asserted)."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from conftest import require_shared
from siamcli.bench import bench, bench_source, default_box
from siamcli.cli_bench import bench_cmd, bench_table
from siamcli.errors import SiamcliError


def test_torch_model_on_a_video_reports_every_stage_and_the_one_thread_baseline(synthetic_video, alex_weights):
    result = bench("siamrpn_alex_dwxcorr", synthetic_video, weights=alex_weights, engine="torch",
                   precision="fp32", device="cpu", init_box=(40, 30, 40, 40), max_frames=6)
    assert result["frames"] == 6
    assert set(result["stages_ms"]) == {"decode", "crop", "network", "post", "write", "total"}
    assert all(v >= 0 for v in result["stages_ms"].values())
    assert result["stages_ms"]["network"] <= result["stages_ms"]["total"]
    assert result["fps"] > 0 and "mean_iou" not in result
    assert 0 <= result["outside_network_pct"] < 100
    base = result["baseline"]
    assert base["name"] == "torch eager fp32, 1 thread" and base["fps"] > 0
    assert result["speedup"] == pytest.approx(result["fps"] / base["fps"], rel=0.02)
    for run in (result, base):  # the first frame's costs, kept out of the medians
        assert set(run["startup_ms"]) >= {"init", "first_update"} and all(v > 0 for v in run["startup_ms"].values())
    assert "engine" in result["startup_ms"]  # building siamcli's engine, before the first frame
    json.dumps(result)  # JSON-ready


def test_preloaded_frames_take_decoding_out_of_the_loop(synthetic_video, alex_weights):
    runs = {}
    for preload in (False, True):
        runs[preload] = bench("siamrpn_alex_dwxcorr", synthetic_video, weights=alex_weights, engine="torch",
                              precision="fp32", device="cpu", init_box=(40, 30, 40, 40), max_frames=8,
                              baseline=False, preload=preload)
    assert runs[True]["preloaded"] and not runs[False]["preloaded"]
    assert runs[True]["frames"] == runs[False]["frames"] == 8
    # decoding an mp4 frame costs far more than taking one from a list
    assert runs[True]["stages_ms"]["decode"] < runs[False]["stages_ms"]["decode"]
    assert runs[True]["stages_ms"]["decode"] < 0.05


@pytest.mark.shared_data
def test_nanotrack_on_a_sequence_is_compared_with_opencv_tracker_nano():
    seq = require_shared("data", "seqs", "otb_Crossing")
    pth = require_shared("data", "weights", "nanotrack", "v2", "nanotrackv2.pth")
    result = bench("nanotrack_v2", seq, weights=pth, engine="onnx", precision="fp32", device="cpu", max_frames=8)
    assert result["frames"] == 8 and result["engine"].startswith("onnx")
    assert 0.3 < result["mean_iou"] <= 1.0
    base = result["baseline"]
    assert base["name"].startswith("cv2.TrackerNano") and base["fps"] > 0
    assert 0.3 < base["mean_iou"] <= 1.0
    # OpenCV's update is crop, network and post-processing in one: no share can be told apart
    assert base["outside_network_pct"] is None and result["outside_network_pct"] > 0
    assert "Crossing" in bench_table(result).title


def test_bench_command_prints_a_table_and_writes_json(tmp_path, synthetic_video, alex_weights):
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(bench_cmd, [str(synthetic_video), "-m", "siamrpn_alex_dwxcorr", "-w", str(alex_weights),
                                            "--engine", "torch", "--precision", "fp32", "--device", "cpu",
                                            "--init", "40,30,40,40", "-n", "4", "--no-baseline", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "network" in result.output and "end-to-end fps" in result.output
    assert "first frame: init" in result.output and "first update" in result.output
    assert "outside network" in result.output and "start: engine built" in result.output
    doc = json.loads(out.read_text())
    assert doc["model"] == "siamrpn_alex_dwxcorr" and doc["frames"] == 4 and "baseline" not in doc


def test_bench_command_bad_init_box_exits_2_with_one_line(synthetic_video, alex_weights, capsys):
    from siamcli.cli import main

    with pytest.raises(SystemExit) as done:
        main(["bench", str(synthetic_video), "-m", "siamrpn_alex_dwxcorr", "-w", str(alex_weights), "--init", "1,2,3"])
    err = capsys.readouterr().err
    assert done.value.code == 2
    assert err.startswith("siamcli: error: ") and "x,y,w,h" in err and "Traceback" not in err


def test_unreadable_source_is_a_user_error(tmp_path):
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(SiamcliError, match="cannot open video"):
        bench_source(bad)
    with pytest.raises(SiamcliError, match="no image frames"):
        bench_source(tmp_path)


def test_outside_network_share_is_each_frames_time_beside_the_network_in_percent():
    import io
    import time

    import numpy as np

    from siamcli.bench import _loop
    from siamcli.tracking.tracker import TrackResult

    class Slow:
        def init(self, frame, box):
            pass

        def update(self, frame):
            time.sleep(0.02)  # a frame takes at least 20 ms, of which the "network" says it took 5
            return TrackResult((0.0, 0.0, 1.0, 1.0), 1.0)

    frames = [np.zeros((8, 8, 3), np.uint8)] * 5
    out = _loop(lambda: frames, (0, 0, 1, 1), Slow(), lambda update: {"network": 0.005}, 1, io.StringIO())
    assert 75 <= out["outside_network_pct"] < 100
    from rich.console import Console

    console = Console(width=100, record=True, file=io.StringIO())
    console.print(bench_table({"model": "m", "source": "s", "frames": 5, "engine": "e", **out, "baseline": None}))
    row = next(line for line in console.export_text().splitlines() if "outside network" in line)
    assert f"{out['outside_network_pct']:.1f} %" in row


def test_default_box_is_centred_and_a_quarter_of_the_frame():
    assert default_box((240, 320, 3)) == (120.0, 90.0, 80.0, 60.0)


def test_bench_table_names_a_reduced_precision_beside_the_engine():
    result = {"model": "siamrpn_alex_dwxcorr", "source": "seqs/otb_Crossing", "frames": 10, "engine": "onnx-cpu",
              "precision": "int8", "stages_ms": {"network": 15.0, "total": 16.0}, "fps": 62.5}
    headers = [c.header for c in bench_table(result).columns]
    assert headers == ["stage (median ms)", "onnx-cpu int8"]
    result["precision"] = "fp32"
    assert [c.header for c in bench_table(result).columns][1] == "onnx-cpu"
    result.update(engine="torch-cpu-bf16-compiled", precision="bf16")  # already named: not repeated
    assert [c.header for c in bench_table(result).columns][1] == "torch-cpu-bf16-compiled"


def test_a_bundled_model_on_onnx_files_still_gets_its_torch_baseline(tmp_path, synthetic_video):
    from siamcli.api import resolve_spec, resolve_weights
    from siamcli.catalog import build_network
    from siamcli.export import export_onnx
    from siamcli.models.checkpoint import load_weights

    spec = resolve_spec("siamrpn")
    net = build_network(spec)
    load_weights(net, resolve_weights(spec, None), spec.name)
    paths = export_onnx(net, tmp_path / "onnx")
    result = bench("siamrpn", synthetic_video, engine="onnx", device="cpu", init_box=(40, 30, 40, 40), max_frames=4,
                   onnx_files=[paths["template"], paths["search"]])
    base = result["baseline"]
    assert "skipped" not in base and base["fps"] > 0
    assert result["speedup"] == pytest.approx(result["fps"] / base["fps"], rel=0.02)


@pytest.mark.shared_data
def test_vs_opencv_runs_tracker_nano_beside_any_model_in_alternated_rounds(tmp_path, capsys):
    """`siamcli bench VIDEO --vs-opencv`: OpenCV's TrackerNano on the same frames, round after round, medians."""
    from siamcli.cli import main

    seq = require_shared("data", "seqs", "otb_Crossing")
    pair = [str(require_shared("data", "weights", "nanotrack", "v2", n))
            for n in ("nanotrack_backbone_sim.onnx", "nanotrack_head_sim.onnx")]
    out = tmp_path / "vs.json"
    with pytest.raises(SystemExit) as done:
        main(["bench", str(seq), "-m", "siamrpn", "--engine", "onnx", "--device", "cpu", "-n", "6", "--vs-opencv",
              "--baseline-onnx", *pair, "--rounds", "2", "--json", str(out)])
        raise SystemExit(0)
    assert done.value.code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "medians of 2 alternated rounds" in printed and "fps by round" in printed
    doc = json.loads(out.read_text())
    base = doc["baseline"]
    assert doc["model"] == "siamrpn" and base["name"].startswith("cv2.TrackerNano") and doc["rounds"] == 2
    for run in (doc, base):
        assert len(run["rounds_fps"]) == 2 and all(v > 0 for v in run["rounds_fps"])
        assert run["fps"] == pytest.approx(sorted(run["rounds_fps"])[0] / 2 + sorted(run["rounds_fps"])[1] / 2,
                                           abs=0.01)  # the median of two rounds
        assert 0.3 < run["mean_iou"] <= 1.0
    one = bench("siamrpn", seq, engine="onnx", device="cpu", max_frames=6, baseline=False)
    assert one["mean_iou"] == doc["mean_iou"]  # every round tracks the same frames the same way
    assert doc["speedup"] == pytest.approx(doc["fps"] / base["fps"], rel=0.02)


def test_vs_opencv_needs_the_onnx_pair_and_a_baseline(synthetic_video, alex_weights, capsys):
    from siamcli.cli import main

    for extra, message in ((["--vs-opencv"], "--vs-opencv needs a NanoTrack ONNX pair"),
                           (["--vs-opencv", "--no-baseline"], "drop --no-baseline")):
        with pytest.raises(SystemExit) as done:
            main(["bench", str(synthetic_video), "-m", "siamrpn_alex_dwxcorr", "-w", str(alex_weights), "-n", "3",
                  "--engine", "torch", *extra])
        err = capsys.readouterr().err
        assert done.value.code == 2 and err.startswith("siamcli: error: ") and message in err
        assert len(err.strip().splitlines()) == 1
