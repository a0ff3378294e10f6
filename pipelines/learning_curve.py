"""Learning curves: target accuracy against the number of labeled target examples, with and
without transfer, and the three benefits of transfer (higher start, slope, asymptote).

Run (after `make install`)::

    HF_HUB_OFFLINE=1 python pipelines/learning_curve.py
    HF_HUB_OFFLINE=1 python pipelines/learning_curve.py --config configs/curve_movies_products.yaml --set seeds=[0]

Writes runs/<name>/ (config.resolved.yaml, metrics.json, report.md, samples.json, plots/learning_curve.png).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "curve_movies_products.yaml"


def main(argv: Sequence[str] | None = None) -> int:
    from textransfer.cli import main as cli_main

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(DEFAULT_CONFIG))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    return cli_main(["curve", args.config, *[a for o in args.overrides for a in ("--set", o)]])


if __name__ == "__main__":
    sys.exit(main())
