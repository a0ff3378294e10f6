"""Cross-domain evaluation: movie -> product transfer with in-domain, cross-domain and oracle
accuracy, transfer gap, A-distance, calibration, and the CORAL / DANN adaptations.

Run (after `make install`)::

    HF_HUB_OFFLINE=1 python pipelines/cross_domain.py
    HF_HUB_OFFLINE=1 python pipelines/cross_domain.py --config configs/crossdomain_movies_products.yaml --set seeds=[0]

Writes runs/<name>/ (config.resolved.yaml, metrics.json, report.md, plots/*.png).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "crossdomain_movies_products.yaml"


def main(argv: Sequence[str] | None = None) -> int:
    from textransfer.cli import main as cli_main

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(DEFAULT_CONFIG))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    return cli_main(["crossdomain", args.config, *[a for o in args.overrides for a in ("--set", o)]])


if __name__ == "__main__":
    sys.exit(main())
