#!/usr/bin/env bash
# int8 (onnxruntime static quantization, `siamcli export --int8`) against fp32 onnxruntime, on this CPU.
#
#   benchmarks/bench_int8.sh OUT_DIR [MODELS]
#
# For each model: export fp32 + int8 (calibrated on crops of a training video, not of the scored
# sequences), then `siamcli bench` of the fp32 graphs and of the int8 graphs back to back on
# otb_Crossing (JSON into OUT_DIR). Models with real weights (siamcli's bundled ones, NanoTrack v2)
# are also scored with `siamcli eval` on ../shared/data/seqs in both precisions; the zoo models run
# with random weights of the published shapes (their checkpoints cannot be downloaded here), which
# measures speed only.
set -u
OUT=${1:?usage: benchmarks/bench_int8.sh OUT_DIR [MODELS]}
MODELS=${2:-"siamrpn siamban nanotrack_v2 siamrpn_alex_dwxcorr siamrpn_r50_l234_dwxcorr siamban_r50_l234"}
cd "$(dirname "$0")/.." || exit 1
SIAMCLI=${SIAMCLI:-.venv/bin/siamcli}
PY=${PYTHON:-.venv/bin/python}
SHARED=${SHARED:-../shared}
SEQ=$SHARED/data/seqs/otb_Crossing
CALIB=$SHARED/data/videos/opencv_Megamind.avi
export OMP_WAIT_POLICY=PASSIVE
mkdir -p "$OUT/weights"
"$PY" -m tools.random_weights "$OUT/weights" siamrpn_r50_l234_dwxcorr siamban_r50_l234
weights_for() {
  case $1 in
    siamrpn|siamban) echo "" ;;
    nanotrack_v2) echo "-w $SHARED/data/weights/nanotrack/v2/nanotrackv2.pth" ;;
    siamrpn_alex_dwxcorr) echo "-w $SHARED/reference/parity/siamrpn_alex_dwxcorr_random.pth" ;;
    *) echo "-w $OUT/weights/$1.pth" ;;
  esac
}
frames_for() {
  case $1 in *r50*) echo 12 ;; siamrpn_alex_dwxcorr) echo 60 ;; *) echo 120 ;; esac
}
for m in $MODELS; do
  W=$(weights_for "$m")
  D=$OUT/$m
  # shellcheck disable=SC2086
  "$SIAMCLI" export "$m" $W -o "$D" --int8 "$CALIB" || { echo "export $m failed"; continue; }
  N=$(frames_for "$m")
  for prec in fp32 int8; do
    S=$D/search.onnx; [ "$prec" = int8 ] && S=$D/search_int8.onnx
    # shellcheck disable=SC2086
    "$SIAMCLI" bench "$SEQ" -m "$m" --engine onnx --onnx "$D/template.onnx" "$S" -n "$N" --no-baseline \
      --json "$OUT/bench-$m-$prec.json" || echo "bench $m $prec failed"
  done
  case $m in
    siamrpn|siamban|nanotrack_v2)
      for prec in fp32 int8; do
        S=$D/search.onnx; [ "$prec" = int8 ] && S=$D/search_int8.onnx
        "$SIAMCLI" eval "$SHARED/data/seqs" -m "$m" --engine onnx --onnx "$D/template.onnx" "$S" -q \
          --json "$OUT/eval-$m-$prec.json" || echo "eval $m $prec failed"
      done ;;
  esac
done
