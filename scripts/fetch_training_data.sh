#!/bin/sh
# Copy OpenCV's sample video vtest.avi and its sample photographs (siamcli.training.data.OPENCV_PHOTOS)
# out of Debian's opencv-doc package into DIR (default .train_data/opencv), for
# `scripts/train_default.py --opencv-samples DIR`. Needs apt-get (Debian or Ubuntu); the package is
# only downloaded and unpacked here, not installed.
set -eu
dir=${1:-.train_data/opencv}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! (cd "$work" && apt-get download opencv-doc >/dev/null 2>&1); then
    [ "$(id -u)" = 0 ] && apt-get update -qq >/dev/null 2>&1 || true
    (cd "$work" && apt-get download opencv-doc >/dev/null) || {
        echo "error: could not download Debian's opencv-doc package (apt-get download opencv-doc)" >&2; exit 2; }
fi
dpkg-deb -x "$work"/opencv-doc_*.deb "$work/x"
src="$work/x/usr/share/doc/opencv-doc/examples/data"
mkdir -p "$dir"
# the file names, read from siamcli/training/data.py without importing it (no OpenCV needed here)
names=$(cd "$(dirname "$0")/.." && python3 -c "
import ast, pathlib
tree = ast.parse(pathlib.Path('siamcli/training/data.py').read_text())
for node in tree.body:
    if isinstance(node, ast.Assign) and node.targets[0].id in ('OPENCV_PHOTOS', 'OPENCV_VIDEO'):
        value = ast.literal_eval(node.value)
        print(' '.join(value if isinstance(value, tuple) else (value,)))")
for name in $names; do cp "$src/$name" "$dir/"; done
echo "$(ls "$dir" | wc -l) files in $dir ($(ls "$work"/opencv-doc_*.deb | xargs basename))"
