"""Write random weights of the published shapes (seed 0) for model-zoo architectures whose
checkpoints cannot be downloaded here: speed does not depend on the values.

    .venv/bin/python -m tools.random_weights OUT_DIR MODEL [MODEL ...]      # writes OUT_DIR/MODEL.pth
"""
from __future__ import annotations

from pathlib import Path

import click


def write_random_weights(model: str, path: Path) -> Path:
    """The state dict of ``model``'s network with torch's seed 0, saved to ``path``."""
    import torch

    from siamcli.catalog import build_model

    torch.manual_seed(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(build_model(model).state_dict(), path)
    return path


@click.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.argument("models", nargs=-1, required=True)
def main(out_dir: Path, models) -> None:
    """Write OUT_DIR/MODEL.pth for each MODEL."""
    from siamcli.catalog import get_spec
    from siamcli.errors import SiamcliError

    from tools import BadInput

    for name in models:
        try:
            get_spec(name)
        except SiamcliError as exc:
            raise BadInput(str(exc)) from None
        click.echo(write_random_weights(name, out_dir / f"{name}.pth"))


if __name__ == "__main__":
    main()
