"""The main job: movie -> product transfer report for frozen TF-IDF, GloVe and MiniLM encoders.

Run (after `make install`, or simply `make demo`)::

    python pipelines/movies_to_products.py
    python pipelines/movies_to_products.py --config configs/movies_to_products.yaml --set seed=1

Writes runs/movies_to_products/ (config.resolved.yaml, metrics.json, report.md, <setup>/model/).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "movies_to_products.yaml"


def main(argv: Sequence[str] | None = None) -> int:
    from textransfer.cli import main as cli_main

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(DEFAULT_CONFIG))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    return cli_main(["run", args.config, *[a for o in args.overrides for a in ("--set", o)]])


if __name__ == "__main__":
    sys.exit(main())
