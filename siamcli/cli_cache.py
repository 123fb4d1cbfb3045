"""``siamcli cache``: what start-up remembers (auto's engine choice per model and machine, ONNX
exports), shown or cleared.

Registered on the main group by :mod:`siamcli.cli`.
"""
from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table


@click.command("cache")
@click.option("--clear", is_flag=True,
              help="Delete what is remembered: the next start measures and exports again.")
def cache_cmd(clear: bool) -> None:
    """What start-up remembers: auto's measured choice per model and machine, and ONNX exports.

    The folder is $SIAMCLI_CACHE_DIR (default ~/.cache/siamcli); SIAMCLI_CACHE_DIR=none turns it off.
    """
    from .engines import startup_cache

    info = startup_cache.summary()
    if info is None:
        click.echo("the start-up cache is off (SIAMCLI_CACHE_DIR=none)")
        return
    if clear:
        click.echo(f"cleared {info['dir']}: {startup_cache.clear()} files")
        return
    table = Table("model", "device", "threads", "auto's choice", "probe (search branch, ms)",
                  title=f"{info['dir']}: {info['exports']} ONNX exports ({info['optimized']} optimized for this "
                        f"CPU), {info['export_bytes'] / 1e6:.0f} MB")
    for entry in info["choices"]:
        probe = ", ".join(f"{k} {v:.1f}" for k, v in (entry.get("probe_ms") or {}).items())
        threads = entry.get("threads")
        table.add_row(str(entry.get("model")), str(entry.get("device", "auto")),
                      "default" if threads is None else str(threads), str(entry.get("choice")), probe)
    if info["unreadable"]:
        table.caption = f"{info['unreadable']}: passed over, measured again at the next start"
    Console().print(table)
