#!/usr/bin/env python
"""siamcli's NanoTrack v2 against OpenCV's cv2.TrackerNano on every sequence, same process.

    .venv/bin/python scripts/bench_vs_opencv.py [--engine auto] [--precision auto] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from siamcli.bench import bench  # noqa: E402
from siamcli.eval.datasets import find_sequences  # noqa: E402

SHARED = ROOT.parent / "shared"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seqs", default=str(SHARED / "data/seqs"))
    ap.add_argument("--weights", default=str(SHARED / "data/weights/nanotrack/v2/nanotrackv2.pth"))
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--json")
    args = ap.parse_args()
    rows = []
    for seq in find_sequences(args.seqs):
        r = bench("nanotrack_v2", Path(args.seqs) / seq.name,
                  weights=args.weights, engine=args.engine, precision=args.precision, device="cpu")
        b = r["baseline"]
        rows.append({"sequence": seq.name, "frames": r["frames"], "engine": r["engine"], "probe_ms": r.get("probe_ms"),
                     "fps": r["fps"], "mean_iou": r["mean_iou"], "network_ms": r["stages_ms"]["network"],
                     "opencv_fps": b["fps"], "opencv_mean_iou": b["mean_iou"], "opencv_update_ms": b["stages_ms"]["network"]})
        print(json.dumps(rows[-1]), flush=True)
    frames = sum(r["frames"] - 1 for r in rows)
    summary = {
        "fps": round(frames / sum((r["frames"] - 1) / r["fps"] for r in rows), 1),
        "opencv_fps": round(frames / sum((r["frames"] - 1) / r["opencv_fps"] for r in rows), 1),
        "mean_iou": round(sum(r["mean_iou"] for r in rows) / len(rows), 4),
        "opencv_mean_iou": round(sum(r["opencv_mean_iou"] for r in rows) / len(rows), 4),
    }
    print(json.dumps(summary))
    if args.json:
        Path(args.json).write_text(json.dumps({"sequences": rows, "summary": summary}, indent=1) + "\n")


if __name__ == "__main__":
    main()
