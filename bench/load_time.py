"""Start-up cost in cold processes: ``import textransfer``; loading a saved frozen model
(MiniLM + logistic regression) and predicting one sentence; next to sentence-transformers' own
import + load + encode of one sentence. Each case is a fresh Python process, timed inside it
(interpreter start-up excluded), median of repeats.

Run (about 1 minute)::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/load_time.py --repeats 3
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Sequence

import numpy as np
from _common import _ROOT, machine, median, table, verdict

_TIMER = "import time, warnings; warnings.filterwarnings('ignore'); t = time.perf_counter(); {body}; print(time.perf_counter() - t)"


def _cold(body: str) -> float:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": _ROOT}
    out = subprocess.run([sys.executable, "-c", _TIMER.format(body=body)], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _save_model(directory: str) -> None:
    from textransfer.classifier import Classifier
    from textransfer.data.labeled import LabelMap
    from textransfer.encoders import create_encoder
    from textransfer.heads import create_head

    enc = create_encoder("transformer", model="all-MiniLM-L6-v2")
    texts = ["great battery life", "the screen broke after a day", "love it", "awful"]
    labels = LabelMap.from_labels(["positive", "negative"])
    y = labels.encode(["positive", "negative", "positive", "negative"])
    head = create_head("logreg").fit(enc.encode(texts), y, num_classes=2)
    Classifier(enc, head, labels).save(directory)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    from textransfer.resources import resolve_model

    st_path = resolve_model("all-MiniLM-L6-v2")
    with tempfile.TemporaryDirectory() as d:
        model_dir = os.path.join(d, "model")
        _save_model(model_dir)
        cases = {
            "import textransfer": "import textransfer",
            "textransfer: import + load saved frozen model + predict 1 sentence": (
                f"import textransfer; textransfer.load({model_dir!r}).predict(['great battery'])"
            ),
            "sentence-transformers: import + load + encode 1 sentence": (
                "from sentence_transformers import SentenceTransformer; "
                f"SentenceTransformer({st_path!r}, device='cpu').encode(['great battery'])"
            ),
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.repeats):
            for name, body in cases.items():
                times[name].append(_cold(body))
    med = {name: median(ts) for name, ts in times.items()}
    rows = [[name, round(m, 3), f"{np.min(times[name]):.3f}-{np.max(times[name]):.3f}"] for name, m in med.items()]
    ours = med["textransfer: import + load saved frozen model + predict 1 sentence"]
    theirs = med["sentence-transformers: import + load + encode 1 sentence"]
    print(f"## Load time (cold processes)\n\n{args.repeats} repeats; machine: {machine()}\n")
    print(table(["case", "median s", "range s"], rows))
    print(f"\n- import textransfer {med['import textransfer']:.3f} s: {verdict(med['import textransfer'], 0.3, higher_is_better=False)}")
    print(f"- load + predict vs sentence-transformers load + encode: {theirs / ours:.2f}x ({ours:.2f} s vs {theirs:.2f} s; no goal, reported)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
