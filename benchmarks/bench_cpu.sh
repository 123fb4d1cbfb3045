#!/usr/bin/env bash
# `siamcli bench` of every model on this CPU, each with its baseline in the same process
# (cv2.TrackerNano for nanotrack_v2; eager fp32 torch on one thread for the others).
#
#   benchmarks/bench_cpu.sh OUT_DIR [SOURCE]
#
# Engine: auto (measured at start among accuracy-verified options) for every model, plus
# siamrpn_alex_dwxcorr on its int8 export (benchmarks/bench_int8.sh writes it; skipped if absent:
# INT8_DIR, default OUT_DIR/../int8/siamrpn_alex_dwxcorr). Zoo models run with random weights of the
# published shapes (their checkpoints cannot be downloaded here); speed does not depend on the values.
# The zoo models also run on torch bf16 (channels-last, oneDNN on AMX where the CPU has it), asked for
# explicitly: their accuracy in bf16 cannot be verified without the real checkpoints; and once more with
# --compile (torch.compile of the search branch, compiled during the warm-up frames).
# ONLY=REGEX runs only the rows whose name matches (e.g. ONLY='alex|r50').
set -u
OUT=${1:?usage: benchmarks/bench_cpu.sh OUT_DIR [SOURCE]}
cd "$(dirname "$0")/.." || exit 1
SHARED=${SHARED:-../shared}
SOURCE=${2:-$SHARED/data/seqs/otb_Crossing}
SIAMCLI=${SIAMCLI:-.venv/bin/siamcli}
PY=${PYTHON:-.venv/bin/python}
INT8_DIR=${INT8_DIR:-$OUT/../int8/siamrpn_alex_dwxcorr}
export OMP_WAIT_POLICY=PASSIVE
mkdir -p "$OUT/weights"
"$PY" -m tools.random_weights "$OUT/weights" siamrpn_mobilev2_l234_dwxcorr siamrpn_r50_l234_dwxcorr siamban_r50_l234
ALEX=$SHARED/reference/parity/siamrpn_alex_dwxcorr_random.pth
ONLY=${ONLY:-.}
run() {  # name, frames, options...
  local name=$1 frames=$2; shift 2
  [[ $name =~ $ONLY ]] || return 0
  echo "== $name"
  "$SIAMCLI" bench "$SOURCE" -n "$frames" --json "$OUT/$name.json" "$@" || echo "   $name failed"
}
run siamrpnban 120 -m siamrpnban
run siamrpn 120 -m siamrpn
run siamban 120 -m siamban
run nanotrack_v2 120 -m nanotrack_v2 -w "$SHARED/data/weights/nanotrack/v2/nanotrackv2.pth"
run siamrpn_alex_dwxcorr 60 -m siamrpn_alex_dwxcorr -w "$ALEX"
run siamrpn_alex_dwxcorr-bf16 60 -m siamrpn_alex_dwxcorr -w "$ALEX" --engine torch --precision bf16
run siamrpn_alex_dwxcorr-bf16-compiled 60 -m siamrpn_alex_dwxcorr -w "$ALEX" --engine torch --precision bf16 --compile
if [ -f "$INT8_DIR/search_int8.onnx" ]; then
  run siamrpn_alex_dwxcorr-int8 60 -m siamrpn_alex_dwxcorr -w "$ALEX" --engine onnx \
    --onnx "$INT8_DIR/template.onnx" "$INT8_DIR/search_int8.onnx"
fi
for m in siamrpn_mobilev2_l234_dwxcorr siamrpn_r50_l234_dwxcorr siamban_r50_l234; do
  frames=12; [ "$m" = siamrpn_mobilev2_l234_dwxcorr ] && frames=20
  run "$m" $frames -m "$m" -w "$OUT/weights/$m.pth"
  run "$m-bf16" $frames -m "$m" -w "$OUT/weights/$m.pth" --engine torch --precision bf16
  run "$m-bf16-compiled" $frames -m "$m" -w "$OUT/weights/$m.pth" --engine torch --precision bf16 --compile
done
