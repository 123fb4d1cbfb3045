#!/usr/bin/env bash
# Everything a lent GPU machine is used for, in one run (fits a 10-minute call):
#   1. random weights of the right structure for the zoo models (their checkpoints cannot be
#      downloaded here; speed does not depend on the values), the real NanoTrack v2 weights and
#      siamcli's bundled weights;
#   2. scripts/gpu_bench.sh over every model on one real sequence;
#   3. CUDA fp32 / fp16 accuracy of the bundled models on the real sequences;
#   4. one summary JSON of all of it.
#
#   scripts/gpu_all.sh DATA_DIR OUT_DIR      # DATA_DIR: seqs/ and nanotrackv2.pth (e.g. .gpu_data)
set -u
DATA=${1:?usage: scripts/gpu_all.sh DATA_DIR OUT_DIR}
OUT=${2:?usage: scripts/gpu_all.sh DATA_DIR OUT_DIR}
PY=${PYTHON:-python3}
cd "$(dirname "$0")/.." || exit 1
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
mkdir -p "$OUT" /tmp/gpu_weights /tmp/gpu_bench
"$PY" scripts/random_weights.py /tmp/gpu_weights siamrpn_alex_dwxcorr siamrpn_mobilev2_l234_dwxcorr siamrpn_r50_l234_dwxcorr siamban_r50_l234
cp "$DATA/nanotrackv2.pth" /tmp/gpu_weights/nanotrack_v2.pth
cp weights/siamban.pth weights/siamrpn.pth /tmp/gpu_weights/
BENCH_OUT=/tmp/gpu_bench timeout 400 bash scripts/gpu_bench.sh "$DATA/seqs/vot16_bag" /tmp/gpu_weights "${FRAMES:-150}"
for model in siamban siamrpn; do
  for prec in fp32 fp16; do
    timeout 60 "$PY" -m siamcli eval "$DATA/seqs" -m "$model" --engine torch --precision "$prec" --device cuda \
      --json "/tmp/gpu_bench/eval-$model-$prec.json" -q || echo "eval $model $prec failed"
  done
done
"$PY" - "$OUT" <<'EOF'
import json, pathlib, sys
out = {}
for path in sorted(pathlib.Path("/tmp/gpu_bench").glob("*.json")):
    out[path.stem] = json.loads(path.read_text())
pathlib.Path(sys.argv[1], "gpu_results.json").write_text(json.dumps(out, indent=1))
for name, r in out.items():
    if name.startswith("eval-"):
        print(name, r.get("overall", r.get("mean_iou")))
    else:
        print(name, "fps", r.get("fps"), "network ms", (r.get("stages_ms") or {}).get("network"))
EOF
