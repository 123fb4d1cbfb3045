"""The GOT-10k adapter of docs/python.md, as written there, run by the GOT-10k toolkit's own
experiment loop (ExperimentOTB's run and report): the same scores as `siamcli eval`."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, require_shared

SEQUENCE = "otb_Crossing"


def adapter_snippet() -> str:
    text = (ROOT / "docs" / "python.md").read_text()
    blocks = re.findall(r"^```python\n(.*?)^```$", text, re.S | re.M)
    return next(b for b in blocks if "class SiamcliTracker(GOT10kTracker)" in b)


class OneSequence:
    """What ExperimentOTB reads of a dataset: the sequence names, and (frame files, boxes) for each."""

    def __init__(self, folder: Path) -> None:
        from siamcli.eval.datasets import load_sequence

        sequence = load_sequence(folder)
        self.seq_names = [sequence.name]
        self._item = ([str(p) for p in sequence.frames], np.asarray(sequence.groundtruth, dtype=np.float64))

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index):
        return self._item

    def __iter__(self):
        return iter([self._item])


@pytest.mark.shared_data
def test_the_got10k_toolkit_scores_the_adapter_as_siamcli_eval_does(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MPLBACKEND", "Agg")  # the toolkit's report draws its plots with pyplot
    pytest.importorskip("got10k", reason="the GOT-10k toolkit: pip install -c constraints.txt got10k")
    from got10k.experiments import ExperimentOTB
    from got10k.utils.metrics import rect_iou

    from siamcli.cli import main

    folder = require_shared("data", "seqs", SEQUENCE)
    data = tmp_path / "data"
    data.mkdir()
    (data / SEQUENCE).symlink_to(folder)
    monkeypatch.chdir(data)  # the snippet reads the sequence from the working directory, as written
    namespace: dict = {}
    exec(compile(adapter_snippet(), "docs/python.md", "exec"), namespace)
    assert namespace["boxes"].shape == (120, 4)  # the snippet's own run, through the toolkit's loop

    # the toolkit's experiment, on the one sequence, with the engine `siamcli eval` is given below
    experiment = ExperimentOTB.__new__(ExperimentOTB)  # its constructor would download OTB
    experiment.dataset = OneSequence(folder)
    experiment.result_dir, experiment.report_dir = str(tmp_path / "results"), str(tmp_path / "reports")
    experiment.nbins_iou, experiment.nbins_ce = 21, 51
    tracker = namespace["SiamcliTracker"](engine="onnx")
    experiment.run(tracker)
    performance = experiment.report([tracker.name])[tracker.name]["overall"]
    boxes = np.loadtxt(tmp_path / "results" / tracker.name / f"{SEQUENCE}.txt", delimiter=",")
    mean_iou = float(rect_iou(boxes, experiment.dataset[0][1]).mean())

    out = tmp_path / "eval.json"
    with pytest.raises(SystemExit) as done:
        main(["eval", str(data), "--engine", "onnx", "--json", str(out), "-q"])
        raise SystemExit(0)
    assert done.value.code == 0, capsys.readouterr().err
    scored = json.loads(out.read_text())["sequences"][0]
    assert scored["name"] == SEQUENCE and scored["frames_scored"] == len(boxes)
    assert performance["success_score"] == pytest.approx(scored["success_auc"], abs=1e-4)
    assert mean_iou == pytest.approx(scored["mean_iou"], abs=1e-4)
    assert mean_iou > 0.5  # and it tracked: the pedestrian is followed
