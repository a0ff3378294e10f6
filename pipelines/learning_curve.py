"""Learning curves: target accuracy against the number of labeled target examples, with and
without transfer, and the three benefits of transfer (higher start, slope, asymptote).

Run (after `make install`)::

    HF_HUB_OFFLINE=1 python pipelines/learning_curve.py
    HF_HUB_OFFLINE=1 python pipelines/learning_curve.py --config configs/curve_movies_products.yaml --set seeds=[0]

Writes runs/<name>/ (config.resolved.yaml, metrics.json, report.md, samples.json, plots/learning_curve.png).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "curve_movies_products.yaml"


def main(argv: Sequence[str] | None = None) -> int:
    from textransfer.cli import run_pipeline

    return run_pipeline("curve", DEFAULT_CONFIG, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
