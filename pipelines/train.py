"""Train and evaluate any config (same as `textransfer run`).

Run::

    python pipelines/train.py configs/movies_frozen_mlp.yaml --set strategy.head=linear
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from textransfer.cli import main as cli_main

    args = list(sys.argv[1:] if argv is None else argv)
    return cli_main(["run", *args])


if __name__ == "__main__":
    sys.exit(main())
