"""The start-up cache: auto's choice and the ONNX export, remembered per model, weights and machine."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ROOT, square_path, textured_frame
from siamcli.api import create_tracker
from siamcli.engines import startup_cache
from siamcli.engines.factory import choose_engine

# a start in a fresh process: which engine, whether torch was imported, the boxes of 6 frames
START = """
import json, sys
import numpy as np
from siamcli.api import create_tracker
tracker, _ = create_tracker(model="siamrpn", engine="auto")
frames = np.load({frames!r})
tracker.init(frames[0], (40, 30, 40, 40))
boxes = [tracker.update(f).box for f in frames[1:]]
print(json.dumps({{"engine": tracker.engine.name, "torch": "torch" in sys.modules, "boxes": boxes}}))
"""


def _start(cache: Path, frames: Path) -> dict:
    env = dict(os.environ, SIAMCLI_CACHE_DIR=str(cache))
    out = subprocess.run([sys.executable, "-c", START.format(frames=str(frames))], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_second_start_of_the_default_model_needs_neither_the_probe_nor_torch(tmp_path):
    frames = tmp_path / "frames.npy"
    np.save(frames, np.stack([textured_frame(320, 240, x, y, 40, seed=i) for i, (x, y) in enumerate(square_path(6))]))
    cache = tmp_path / "cache"
    cold = _start(cache, frames)
    assert cold["torch"]  # the first start builds the network: to export it and to probe torch
    choices = json.loads((cache / startup_cache.CHOICES).read_text())
    assert [e["model"] for e in choices.values()] == ["siamrpn"]
    warm = _start(cache, frames)
    assert warm["engine"] == cold["engine"]
    if warm["engine"].startswith("onnx"):  # the usual choice on a CPU: remembered export, no network
        assert not warm["torch"]
        files = sorted(p.name for p in (cache / "onnx").glob("*.onnx"))
        # on a CPU the export is kept as onnxruntime optimized it for this machine (what the warm start loaded)
        assert len(files) == 2 and all("-ort" in f for f in files)
    np.testing.assert_array_equal(warm["boxes"], cold["boxes"])


def _track(tracker, n=6):
    frames = [textured_frame(320, 240, x, y, 40, seed=i) for i, (x, y) in enumerate(square_path(n))]
    tracker.init(frames[0], (40, 30, 40, 40))
    return np.array([tracker.update(f).box for f in frames[1:]])


def _exports(cache: Path) -> list:
    """The exported graphs' files (as exported, or as onnxruntime optimized them: ``-ort`` in the name)."""
    return sorted(p.name for p in (cache / "onnx").glob("*.onnx"))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SIAMCLI_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_the_export_is_keyed_by_the_weights_content(cache, tmp_path, alex_weights):
    first, _ = create_tracker("siamrpn_alex_dwxcorr", weights=alex_weights, engine="onnx")
    assert len(_exports(cache)) == 2
    torch.manual_seed(1)
    from siamcli.catalog import build_model

    other = tmp_path / "other.pth"
    torch.save(build_model("siamrpn_alex_dwxcorr").state_dict(), other)
    second, _ = create_tracker("siamrpn_alex_dwxcorr", weights=other, engine="onnx")
    assert len(_exports(cache)) == 4  # not the first file's export
    assert not np.allclose(_track(first), _track(second))
    again, _ = create_tracker("siamrpn_alex_dwxcorr", weights=alex_weights, engine="onnx")
    np.testing.assert_array_equal(_track(again), _track(first))


def test_a_damaged_export_is_made_again(cache, alex_weights):
    expected = _track(create_tracker("siamrpn_alex_dwxcorr", weights=alex_weights, engine="onnx")[0])
    for path in (cache / "onnx").glob("*.onnx"):
        path.write_bytes(b"not an onnx file")
    tracker, _ = create_tracker("siamrpn_alex_dwxcorr", weights=alex_weights, engine="onnx")
    np.testing.assert_array_equal(_track(tracker), expected)
    assert all(p.stat().st_size > 1000 for p in (cache / "onnx").glob("*.onnx"))


def _auto(weights, **options):
    """``auto``'s engine for the alex model with ``weights``, and how it was chosen."""
    from siamcli.api import checkpoint_source
    from siamcli.catalog import get_spec

    return choose_engine(checkpoint_source(get_spec("siamrpn_alex_dwxcorr"), weights), engine="auto", device="cpu",
                         probe_runs=1, **options)


def test_auto_measures_once_then_takes_the_remembered_choice(cache, alex_weights):
    first, probe = _auto(alex_weights)
    assert not probe.remembered and set(probe.ms) >= {"onnx-fp32", "torch-fp32"}
    second, again = _auto(alex_weights)
    assert again.remembered and again.ms == probe.ms
    assert type(second) is type(first) and second.name == first.name
    # another thread count is another measurement
    assert not _auto(alex_weights, threads=1)[1].remembered


def test_a_bad_checkpoint_still_says_what_is_wrong_with_a_remembered_choice(cache, tmp_path, alex_weights):
    from siamcli.errors import SiamcliError

    _auto(alex_weights)
    notes = tmp_path / "notes.pth"
    notes.write_text("not a checkpoint")
    with pytest.raises(SiamcliError) as err:
        _auto(notes)
    assert "no engine could be built" not in str(err.value)
    assert "notes.pth" in str(err.value) or "checkpoint" in str(err.value)


@pytest.mark.parametrize("setting", ["none", "file"])
def test_no_cache_or_an_unusable_one_changes_nothing_but_speed(tmp_path, monkeypatch, alex_weights, setting):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    monkeypatch.setenv("SIAMCLI_CACHE_DIR", "none" if setting == "none" else str(blocker / "cache"))
    assert (startup_cache.cache_dir() is None) == (setting == "none")
    a, _ = create_tracker("siamrpn_alex_dwxcorr", weights=alex_weights, engine="onnx")
    b, _ = create_tracker("siamrpn_alex_dwxcorr", weights=alex_weights, engine="onnx")
    np.testing.assert_array_equal(_track(a), _track(b))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]  # nothing written anywhere


def test_bench_says_when_autos_choice_was_remembered(cache, synthetic_video, alex_weights):
    from siamcli.bench import bench
    from siamcli.cli_bench import bench_table

    runs = [bench("siamrpn_alex_dwxcorr", synthetic_video, weights=alex_weights, engine="auto", device="cpu",
                  init_box=(40, 30, 40, 40), max_frames=4, baseline=False) for _ in range(2)]
    assert [r["probe_remembered"] for r in runs] == [False, True]
    assert runs[0]["engine"] == runs[1]["engine"]
    assert "remembered" in bench_table(runs[1]).caption and "remembered" not in bench_table(runs[0]).caption


def test_the_least_recently_used_exports_make_room(cache, monkeypatch, tmp_path, alex_weights):
    from siamcli.catalog import build_model

    others = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        others.append(tmp_path / f"seed{seed}.pth")
        torch.save(build_model("siamrpn_alex_dwxcorr").state_dict(), others[-1])
    monkeypatch.setenv("SIAMCLI_CACHE_MAX_MB", "100")  # alex's pair is about 40 MB: room for two
    create_tracker("siamrpn_alex_dwxcorr", weights=alex_weights, engine="onnx")
    first = set(_exports(cache))
    create_tracker("siamrpn_alex_dwxcorr", weights=others[0], engine="onnx")
    create_tracker("siamrpn_alex_dwxcorr", weights=alex_weights, engine="onnx")  # used again: now the newest
    create_tracker("siamrpn_alex_dwxcorr", weights=others[1], engine="onnx")
    left = set(_exports(cache))
    assert len(left) == 4 and first <= left  # the seed-1 export, least recently used, went


def test_cache_command_lists_the_choices_and_clears_them(cache, alex_weights):
    from click.testing import CliRunner

    from siamcli.cli_cache import cache_cmd

    _auto(alex_weights, threads=1)
    shown = CliRunner().invoke(cache_cmd, [], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "siamrpn_alex_dwxcorr" in shown.output and "1 ONNX exports" in shown.output
    row = next(line for line in shown.output.splitlines() if "siamrpn_alex_dwxcorr" in line)
    assert " cpu " in row and " 1 " in row  # device and threads of the measurement
    cleared = CliRunner().invoke(cache_cmd, ["--clear"])
    assert cleared.exit_code == 0 and "3 files" in cleared.output  # choices.json and the export's pair
    assert startup_cache.summary()["choices"] == [] and not list((cache / "onnx").glob("*.onnx"))
    assert not _auto(alex_weights, threads=1)[1].remembered


def test_an_optimized_copy_that_cannot_be_written_does_not_stop_the_engine(tmp_path, alex_weights):
    from siamcli.engines.onnx_engine import OnnxEngine
    from siamcli.engines.onnx_export import export_onnx_bytes
    from siamcli.catalog import build_model

    torch.manual_seed(0)
    graphs = export_onnx_bytes(build_model("siamrpn_alex_dwxcorr"), instance_size=287)
    blocked = tmp_path / "a_file"
    blocked.write_text("x")  # a file where a folder should be: nothing can be written under it
    engine = OnnxEngine(*graphs, device="cpu", save_optimized=(blocked / "t.onnx", blocked / "s.onnx"))
    plain = OnnxEngine(*graphs, device="cpu")
    z = np.full((127, 127, 3), 100, np.uint8)
    x = np.random.default_rng(0).integers(0, 256, (287, 287, 3), dtype=np.uint8)
    for got, want in zip(engine.track(x, engine.template(z)), plain.track(x, plain.template(z))):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]
