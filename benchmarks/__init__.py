"""Measurement drivers, run from the project root: ``python -m benchmarks.NAME`` for the Python
ones (click commands; ``--help`` on each), ``benchmarks/NAME.sh`` for the shell ones. What they
measured, and the command for each figure, is in docs/performance.md.

- ``bench_cpu.sh``: ``siamcli bench`` of every model on this CPU, each beside its baseline
- ``bench_int8.sh``: int8 exports against fp32 ones (speed, and accuracy where weights are real)
- ``bench_engines``: per-frame network time of each engine, interleaved, and end-to-end fps
- ``bench_layouts``: torch engine variants of the search branch side by side
- ``bench_targets``: several targets in one batched network call
- ``gpu_bench.sh`` / ``gpu_bench``: everything a lent GPU machine measures, in one call
- ``gpu_profile``: where a frame's GPU time goes, kernel by kernel
- ``batch_demo.sh``: ``siamcli batch`` jobs 1 vs 2, a kill and resume, Ray, broken rows

siamcli against OpenCV's ``cv2.TrackerNano`` is ``siamcli bench SOURCE --vs-opencv``.
"""
