#!/usr/bin/env bash
# Benchmark every model on a CUDA machine: torch fp32, torch fp16 (+ CUDA graphs),
# onnxruntime CUDA and TensorRT. Writes one JSON per run under bench-results/.
#
#   scripts/gpu_bench.sh SOURCE WEIGHTS_DIR [FRAMES]
#
# SOURCE: a video or an OTB-style sequence folder; WEIGHTS_DIR holds <model>.pth for each
# model to run (missing ones are skipped). onnxruntime runs need onnxruntime-gpu (and
# TensorRT libraries for the tensorrt device); runs that cannot start are logged and skipped.
# PYTHON (default python3) must have siamcli's requirements and a CUDA build of torch.
set -u
SOURCE=${1:?usage: scripts/gpu_bench.sh SOURCE WEIGHTS_DIR [FRAMES]}
WEIGHTS=${2:?usage: scripts/gpu_bench.sh SOURCE WEIGHTS_DIR [FRAMES]}
FRAMES=${3:-200}
PY=${PYTHON:-python3}
OUT=${BENCH_OUT:-bench-results}
mkdir -p "$OUT"
cd "$(dirname "$0")/.." || exit 1

MODELS=${MODELS:-"siamban siamrpn nanotrack_v2 siamrpn_alex_dwxcorr siamrpn_mobilev2_l234_dwxcorr siamrpn_r50_l234_dwxcorr siamban_r50_l234"}
# name | options
RUNS=(
  "torch-fp32|--engine torch --precision fp32 --device cuda"
  "torch-fp16|--engine torch --precision fp16 --device cuda"
  "torch-fp16-graphs|--engine torch --precision fp16 --device cuda --cuda-graphs"
  "onnx-cuda|--engine onnx --precision fp32 --device cuda"
  "onnx-tensorrt|--engine onnx --precision fp32 --device tensorrt"
)
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU'; print(torch.cuda.get_device_name(0))" || exit 1
# onnxruntime rows only where onnxruntime-gpu is installed (the CPU build has no CUDA provider)
if ! "$PY" -c "import onnxruntime as o, sys; sys.exit('CUDAExecutionProvider' not in o.get_available_providers())"; then
  echo "onnxruntime has no CUDA provider here (install onnxruntime-gpu): skipping the onnx-cuda and onnx-tensorrt runs"
  RUNS=("${RUNS[@]:0:3}")
fi
failed=0
for model in $MODELS; do
  w="$WEIGHTS/$model.pth"
  [ -f "$w" ] || { echo "skip $model: no $w"; continue; }
  for run in "${RUNS[@]}"; do
    name=${run%%|*}; opts=${run#*|}
    echo "== $model $name"
    # shellcheck disable=SC2086
    if ! "$PY" -c "from siamcli.cli_speed import bench_cmd; bench_cmd()" "$SOURCE" -m "$model" -w "$w" $opts \
         -n "$FRAMES" --json "$OUT/$model-$name.json"; then
      echo "   $model $name failed (see above)"; failed=$((failed + 1))
    fi
  done
done
echo "results in $OUT/ ($failed runs failed)"
