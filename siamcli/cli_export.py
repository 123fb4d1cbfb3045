"""``siamcli export``: a model and its weights as two ONNX graphs (template and search).

Registered on the main group by :mod:`siamcli.cli`; errors propagate to its
``main`` (one line on stderr, exit code 2).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from .cli_options import CONFIG_HELP


@click.command("export")
@click.argument("model", required=False)
@click.option("--config", help=CONFIG_HELP.replace("--model", "MODEL"))
@click.option("-w", "--weights", type=click.Path(dir_okay=False),
              help="Checkpoint (.pth); default: the bundled weights of siamcli's own models.")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Folder for template.onnx and search.onnx.")
@click.option("--int8", "calibrate", metavar="VIDEO", type=click.Path(exists=True),
              help="Also write search_int8.onnx: the search graph's convolutions in int8, calibrated on "
                   "crops from this video file or image folder (measure its accuracy with `siamcli eval --onnx`).")
@click.option("--calibration-crops", type=click.IntRange(min=1), default=64, show_default=True,
              help="Crops drawn for --int8 calibration.")
def export_cmd(model: Optional[str], config: Optional[str], weights: Optional[str], out_dir: str,
               calibrate: Optional[str], calibration_crops: int) -> None:
    """Export MODEL with its weights to ONNX: template.onnx (template patch -> features) and
    search.onnx (search patch + template features -> cls, loc), usable for any target.

    \b
    Example:
      siamcli export nanotrack_v2 -w nanotrackv2.pth -o nanotrack_onnx/
      siamcli track video.mp4 -m nanotrack_v2 --engine onnx --onnx nanotrack_onnx/template.onnx nanotrack_onnx/search.onnx
      siamcli export siamrpn_alex_dwxcorr -w model.pth -o alex/ --int8 video.mp4
    """
    from .api import resolve_spec, resolve_weights
    from .catalog import load_network
    from .export import EXPORT_FILES, export_onnx, write_int8_search
    from .io.outputs import check_outputs, output

    names = [*EXPORT_FILES.values()] + ([EXPORT_FILES["search"].replace(".onnx", "_int8.onnx")] if calibrate else [])
    check_outputs([output("-o", out_dir, folder=True)] + [output("-o", Path(out_dir) / n) for n in names],
                  [weights, config, calibrate])
    spec = resolve_spec(model, config)
    weights = resolve_weights(spec, weights)
    network = load_network(spec, weights)
    paths = export_onnx(network, out_dir, exemplar_size=spec.params.exemplar_size,
                        instance_size=spec.params.instance_size, model_name=spec.name,
                        architecture=spec.architecture)
    if calibrate:
        paths["search_int8"] = write_int8_search(paths["template"], paths["search"], spec.params, calibrate,
                                                 calibration_crops)
    for kind, path in paths.items():
        click.echo(f"{kind}: {path}")
