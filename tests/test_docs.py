"""The documentation as a user reads it: every Python snippet of README.md and docs/*.md runs as
written, every shell command runs (or is listed below as illustrative, with the reason), and the
figures the docs give for the models agree with the catalog.

The snippets run in a working folder laid out as a user's would be: the files they name
(`video.mp4`, `nanotrackv1.pth`, `nanotrackv2.pth`, `model.pth`, `manifest.csv`, `sequences/`, `seqs/`, `otb_Crossing/`)
and NanoTrack's ONNX pair are there, taken from the sample clip and ../shared, and `../shared` lies
beside it."""
from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, SHARED, require_shared

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: shell lines that are not run, and why (a pattern searched in the line)
ILLUSTRATIVE = {
    r"^make (install|test)": "sets up the environment or runs this suite (.ci/run runs both)",
    r"^pip install": "installs packages",
    r"siamcli webcam": "needs a camera or a stream (tests/test_webcam.py drives the window under Xvfb)",
    r"--executor ray": "starts a Ray cluster (tests/test_batch_ray.py runs one)",
    r"--config experiments/": "needs a pysot model-zoo config and checkpoint, which are not redistributable "
                              "(tests/test_configs.py reads the configs)",
    r"siamcli eval \.\./shared/data/val": "the README's models table: six trackers over the nine validation "
                                          "sequences, minutes on 2 cores",
    r"\bMANIFEST\b|\bOUTDIR\b": "placeholders for a user's files",
    r"^siamcli track \(cli\.py": "a diagram of the code, not a command",
    r"SIAMCLI_CACHE_DIR=\$\(mktemp": "a start-up timing, measured by hand (docs/performance.md)",
    r"benchmarks[/.]|\bOUT\b|^for seq in |^done$": "a measurement driver or loop: minutes of runs whose figures are "
                                               "the docs' tables",
}


def _blocks(path: Path):
    """(language, body) of every fenced block."""
    return re.findall(r"^```(\w*)\n(.*?)^```$", path.read_text(), re.S | re.M)


def _shell_lines(body: str):
    """The block's commands, continuation lines joined, comments and blank lines dropped."""
    lines, current = [], ""
    for line in body.splitlines():
        current = f"{current} {line.strip()}" if current else line
        if current.rstrip().endswith("\\"):
            current = current.rstrip()[:-1]
            continue
        if current.strip() and not current.lstrip().startswith("#"):
            lines.append(current.strip())
        current = ""
    return lines


def shell_commands(path: Path):
    """The shell lines of ```sh blocks, and the siamcli lines of untagged blocks (the others of
    those are output, file contents or diagrams)."""
    out = []
    for language, body in _blocks(path):
        if language == "sh":
            out += _shell_lines(body)
        elif language == "":
            out += [line for line in _shell_lines(body) if line.startswith("siamcli ")]
    return out


def python_snippets():
    return [pytest.param(path, i, body, id=f"{path.name}-{i}")
            for path in DOCS for i, (language, body) in enumerate(_blocks(path)) if language == "python"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A user's folder: the files the snippets name, and ../shared beside it."""
    from siamcli.demo import demo_video

    require_shared("data", "seqs")
    root = tmp_path_factory.mktemp("docs")
    (root / "shared").symlink_to(SHARED)
    work = root / "work"
    (work / "sequences").mkdir(parents=True)
    for name in ("video.mp4", "some_video.mp4"):
        shutil.copy(demo_video(), work / name)
    for version in ("v1", "v2"):
        (work / f"nanotrack{version}.pth").symlink_to(
            require_shared("data", "weights", "nanotrack", version, f"nanotrack{version}.pth"))
    (work / "model.pth").symlink_to(require_shared("reference", "parity", "siamrpn_alex_dwxcorr_random.pth"))
    for name in ("nanotrack_backbone_sim.onnx", "nanotrack_head_sim.onnx"):
        (work / name).symlink_to(SHARED / "data" / "weights" / "nanotrack" / "v2" / name)
    (work / "seqs").symlink_to(SHARED / "data" / "seqs")
    (work / "otb_Crossing").symlink_to(SHARED / "data" / "seqs" / "otb_Crossing")
    (work / "sequences" / "otb_Crossing").symlink_to(SHARED / "data" / "seqs" / "otb_Crossing")
    (work / "manifest.csv").write_text("video,x,y,w,h\nvideo.mp4,374,423,57,152\n")
    return work


@pytest.mark.shared_data
@pytest.mark.parametrize("path, index, code", python_snippets())
def test_every_python_snippet_runs_as_written(workspace, path, index, code):
    if "got10k" in code:
        pytest.importorskip("got10k", reason="the GOT-10k toolkit of the test extra: pip install got10k")
    proc = subprocess.run([sys.executable, "-c", code], cwd=workspace, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "MPLBACKEND": "Agg"})
    assert proc.returncode == 0, f"{path.name} snippet {index}:\n{code}\n{proc.stderr[-3000:]}"
    assert proc.stdout.strip(), "every snippet prints what it got"


def _reason(line: str):
    return next((why for pattern, why in ILLUSTRATIVE.items() if re.search(pattern, line)), None)


@pytest.mark.shared_data
@pytest.mark.parametrize("path", [p for p in DOCS if shell_commands(p)], ids=lambda p: p.name)
def test_every_siamcli_command_runs_as_written_or_is_listed_as_illustrative(workspace, path):
    ran = []
    for line in shell_commands(path):
        if _reason(line):
            continue
        words = shlex.split(line, comments=True)
        assert words and words[0] in ("siamcli", ".venv/bin/siamcli"), (
            f"{path.name}: {line!r} is neither a siamcli command nor listed in ILLUSTRATIVE with its reason")
        proc = subprocess.run([sys.executable, "-m", "siamcli", *words[1:]], cwd=workspace, capture_output=True,
                              text=True, timeout=900)
        assert proc.returncode == 0, f"{path.name}: {line}\n{proc.stderr[-3000:]}"
        for flag in ("-o", "--json", "--report", "--save-video"):
            if flag in words:
                written = workspace / words[words.index(flag) + 1]
                assert written.exists(), f"{path.name}: {line} wrote no {written.name}"
        ran.append(line)
    assert ran or path.name in ("live-tracking.md", "performance.md", "batch.md", "architecture.md"), path.name


def test_the_illustrative_list_is_used_and_every_reason_applies_to_a_line():
    lines = [line for path in DOCS for line in shell_commands(path)]
    for pattern in ILLUSTRATIVE:
        assert any(re.search(pattern, line) for line in lines), f"no doc line needs {pattern!r} any more"


def test_loss_thresholds_in_live_tracking_agree_with_the_models():
    """docs/live-tracking.md's thresholds, model by model, against the catalog; every model named once."""
    from siamcli.catalog import MODELS

    text = (ROOT / "docs" / "live-tracking.md").read_text()
    section = text[text.index("## Target loss"):text.index("`--redetect`")]
    bullets = re.findall(r"^- (.*?)(?=^- |\Z)", section, re.S | re.M)
    covered = []
    for bullet in bullets:
        found = re.search(r"uncertain (0\.\d+), lost (0\.\d+)", " ".join(bullet.split()))
        assert found, bullet
        uncertain, lost = map(float, found.groups())
        patterns = re.findall(r"`([a-z0-9_*]+)`", bullet.split(":")[0])
        names = [n for n in MODELS if any(fnmatch.fnmatch(n, p) for p in patterns)]
        assert names, bullet
        for name in names:
            params = MODELS[name].params
            assert (params.uncertain_threshold, params.lost_threshold) == (uncertain, lost), name
        covered += names
    assert sorted(covered) == sorted(MODELS)  # every model, once
