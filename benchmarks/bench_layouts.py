"""Torch engine variants side by side: plain eager vs BatchNorms folded + channels-last, fp32 and bf16,
and bf16 with the search branch compiled (``--compile``).

    .venv/bin/python -m benchmarks.bench_layouts [--models a,b] [--variants "fp32 plain,bf16 CL"]
                                                [--rounds 5] [--calls 4] [--json OUT]

For each model (random weights of the published shapes; speed does not depend on
the values) the search branch of a fixed random patch is timed with every variant
in turn, round after round, so that a slow spell of a shared machine hits all of
them alike. Prints the median ms of each variant and its ratio to plain fp32.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import click  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from siamcli.catalog import build_network, get_spec  # noqa: E402
from siamcli.engines.torch_engine import TorchEngine  # noqa: E402

VARIANTS = {
    "fp32 plain": dict(precision="fp32"),
    "fp32 folded+CL": dict(precision="fp32", fold_bn=True, channels_last=True),
    "bf16 plain": dict(precision="bf16", channels_last=False),
    "bf16 CL": dict(precision="bf16"),
    "bf16 CL compiled": dict(precision="bf16", compile=True),
}


@click.command()
@click.option("--models", default="siamrpn_alex_dwxcorr,siamban_r50_l234,siamrpn", show_default=True)
@click.option("--rounds", default=5, show_default=True)
@click.option("--calls", default=4, show_default=True, help="Timed search calls per variant and round.")
@click.option("--variants", default=",".join(VARIANTS), show_default=True,
              help="Comma-separated variants to time (always with fp32 plain).")
@click.option("--threads", default=2, show_default=True)
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def main(models, variants, rounds, calls, threads, json_out):
    torch.set_num_threads(threads)
    chosen = ["fp32 plain"] + [v.strip() for v in variants.split(",") if v.strip() and v.strip() != "fp32 plain"]
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown:
        raise click.BadParameter(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    rng = np.random.default_rng(0)
    results = {}
    for name in models.split(","):
        spec = get_spec(name)
        torch.manual_seed(0)
        network = build_network(spec)
        z = rng.integers(0, 256, (spec.params.exemplar_size,) * 2 + (3,), dtype=np.uint8)
        x = rng.integers(0, 256, (spec.params.instance_size,) * 2 + (3,), dtype=np.uint8)
        engines = {label: TorchEngine(network, device="cpu", **VARIANTS[label]) for label in chosen}
        feats = {label: e.template(z) for label, e in engines.items()}
        for label, e in engines.items():
            e.track(x, feats[label])  # warm-up (oneDNN primitive creation; compilation)
            e.track(x, feats[label])
        times = {label: [] for label in engines}
        for _ in range(rounds):
            for label, e in engines.items():
                for _ in range(calls):
                    t0 = time.perf_counter()
                    e.track(x, feats[label])
                    times[label].append((time.perf_counter() - t0) * 1000)
        med = {label: float(np.median(t)) for label, t in times.items()}
        results[name] = {label: {"median_ms": round(m, 2), "vs_fp32_plain": round(med["fp32 plain"] / m, 2)}
                         for label, m in med.items()}
        click.echo(f"{name}: " + ", ".join(f"{label} {m:.1f} ms ({med['fp32 plain'] / m:.2f}x)"
                                           for label, m in med.items()))
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps({"threads": threads, "rounds": rounds, "calls": calls,
                                        "torch": torch.__version__, "models": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
