"""`import textransfer` stays cheap: no heavy libraries at import time."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ["torch", "transformers", "gensim", "sentence_transformers", "accelerate", "datasets", "pandas", "sklearn"]


def _imported_after(code: str) -> list[str]:
    probe = f"import sys, json; {code}; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_textransfer_imports_no_heavy_library():
    assert _imported_after("import textransfer") == []


def test_listing_components_imports_no_heavy_library():
    # Registries load every built-in module; those modules must import heavy libraries lazily.
    code = "import textransfer as t; t.list_encoders(); t.list_heads(); t.list_strategies(); t.list_datasets()"
    assert _imported_after(code) == []


def test_public_api_names_resolve():
    import textransfer

    for name in textransfer.__all__:
        assert getattr(textransfer, name) is not None
