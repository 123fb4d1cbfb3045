#!/usr/bin/env bash
# Benchmark every model on a CUDA machine, in one call that fits a 10-minute lease:
#   1. benchmarks/gpu_bench.py: every model in several torch forms (fp32 / fp16, CUDA graphs, crop on
#      the host or on the GPU, channels-last, cuDNN autotuning) from decoded frames, accuracy of the
#      real-weights models on the real sequences, several targets at once, the runtimes installed;
#   2. `siamcli bench --preload` as a user runs it (torch fp16 + CUDA graphs, and onnxruntime's CUDA
#      and TensorRT providers where onnxruntime-gpu is installed) for the models of $CLI_MODELS.
#
#   benchmarks/gpu_bench.sh DATA OUT [gpu_bench.py options]   # DATA: seqs/ and nanotrackv2.pth (e.g. .gpu_data)
#   e.g. benchmarks/gpu_bench.sh .gpu_data out --variants "fp16 graphs,fp32 graphs" --steps bench
#
# PYTHON (default python3) must have siamcli's requirements and a CUDA build of torch.
set -u
DATA=${1:?usage: benchmarks/gpu_bench.sh DATA OUT}
OUT=${2:?usage: benchmarks/gpu_bench.sh DATA OUT}
PY=${PYTHON:-python3}
cd "$(dirname "$0")/.." || exit 1
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
mkdir -p "$OUT"
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU'; print(torch.cuda.get_device_name(0))" || exit 1

timeout "${DRIVER_TIMEOUT:-360}" "$PY" -m benchmarks.gpu_bench --data "$DATA" --out "$OUT" "${@:3}" \
  || echo "gpu_bench.py failed or timed out (partial results in $OUT/gpu_bench.json)"

RUNS=("torch-fp16-graphs|--engine torch --precision fp16 --device cuda --cuda-graphs")
if "$PY" -c "import onnxruntime as o, sys; sys.exit('CUDAExecutionProvider' not in o.get_available_providers())"; then
  RUNS+=("onnx-cuda|--engine onnx --precision fp32 --device cuda" "onnx-tensorrt|--engine onnx --precision fp32 --device tensorrt")
else
  echo "onnxruntime has no CUDA provider here (the CPU build; install onnxruntime-gpu): no onnx-cuda / onnx-tensorrt runs"
fi
for model in ${CLI_MODELS:-siamrpn siamrpn_alex_dwxcorr}; do
  w="/tmp/siamcli_gpu_weights/$model.pth"
  [ -f "$w" ] || w="weights/$model.pth"
  for run in "${RUNS[@]}"; do
    name=${run%%|*}; opts=${run#*|}
    echo "== siamcli bench $model $name"
    # shellcheck disable=SC2086
    timeout 120 "$PY" -m siamcli bench "$DATA/seqs/vot16_bag" -m "$model" -w "$w" $opts --preload --no-baseline \
      --json "$OUT/cli-$model-$name.json" || echo "   $model $name failed (see above)"
  done
done
