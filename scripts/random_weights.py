#!/usr/bin/env python
"""Write random weights of the published shapes (seed 0) for zoo models whose checkpoints cannot be
downloaded here: speed does not depend on the values.

    python scripts/random_weights.py OUT_DIR MODEL [MODEL ...]      # OUT_DIR/MODEL.pth
"""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from siamcli.catalog import build_model  # noqa: E402

if len(sys.argv) < 3:
    sys.exit(__doc__)
out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
for name in sys.argv[2:]:
    torch.manual_seed(0)
    torch.save(build_model(name).state_dict(), out / f"{name}.pth")
