"""The main job: movie -> product transfer report (in-domain, cross-domain and oracle accuracy,
transfer gap, A-distance, calibration, CORAL, fine-tuning and DANN).

Run (`make demo` runs the first line, after installing what is missing)::

    HF_HUB_OFFLINE=1 python pipelines/cross_domain.py
    HF_HUB_OFFLINE=1 python pipelines/cross_domain.py --config configs/movies_to_products.yaml --set seeds=[0]
    HF_HUB_OFFLINE=1 python pipelines/cross_domain.py --config configs/vision_digits_to_mnist.yaml

Writes runs/<name>/ (config.resolved.yaml, metrics.json, report.md, plots/*.png, models/).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "movies_to_products.yaml"


def main(argv: Sequence[str] | None = None) -> int:
    from textransfer.cli import run_pipeline

    return run_pipeline("crossdomain", DEFAULT_CONFIG, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    sys.exit(main())
