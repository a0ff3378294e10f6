"""Layer transfer (Yosinski et al. 2014): keep the bottom k layer groups of a pretrained or
source-trained encoder, re-initialise the rest, train on the target with them frozen (AnB) or
fine-tuned (AnB+), plus the BnB / BnB+ controls for a source-trained base.

Run (after `make install`)::

    HF_HUB_OFFLINE=1 python pipelines/layer_transfer.py                                  # MiniLM, products
    HF_HUB_OFFLINE=1 python pipelines/layer_transfer.py --config configs/vision_layers.yaml   # CNN, digits 0-4 -> 5-9

Writes runs/<name>/ (config.resolved.yaml, metrics.json, report.md, samples.json, plots/layer_transfer.png).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "layers_minilm.yaml"


def main(argv: Sequence[str] | None = None) -> int:
    from textransfer.cli import run_pipeline

    return run_pipeline("layers", DEFAULT_CONFIG, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
