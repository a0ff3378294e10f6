"""Progress bars and quiet mode: one helper for every bar textransfer draws.

Bars (tqdm) show by default when stderr is a terminal and never in a log file or a pipe. What
decides, first match wins:

1. quiet mode (``textransfer -q``, :func:`set_quiet`): no bars, ours or the dependencies';
2. :func:`set_progress` (``True`` / ``False``) from Python;
3. the environment variable ``TEXTRANSFER_PROGRESS`` (``1`` shows bars even in a pipe, ``0``
   hides them);
4. otherwise: bars when stderr is a terminal (tqdm's ``disable=None``).

Only the main process of a multi-process launch (``LOCAL_RANK`` 0) draws bars.

Nothing here imports tqdm, transformers or huggingface_hub at import time: ``import textransfer``
stays cheap.

Example:
    >>> from textransfer._progress import progress
    >>> for batch in progress(batches, desc="encoding", total=len(batches), unit="batch"):  # doctest: +SKIP
    ...     ...
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

ENV = "TEXTRANSFER_PROGRESS"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

_quiet = False
_forced: bool | None = None

# Environment switches that the dependencies read when they are imported: set before their
# import, they silence bars that their own code draws (model loading, shard writing, downloads).
_QUIET_ENV = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "warning",
    "TQDM_DISABLE": "1",
}


def set_progress(enabled: bool | None) -> None:
    """Shows (True) or hides (False) textransfer's bars whatever stderr is; None: back to the
    default (environment, then terminal detection)."""
    global _forced
    _forced = enabled


def _env_setting() -> bool | None:
    value = os.environ.get(ENV, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return None


def enabled() -> bool | None:
    """True: draw bars; False: never; None: tqdm decides (bars when stderr is a terminal)."""
    if _quiet or os.environ.get("LOCAL_RANK", "0") != "0":
        return False
    if _forced is not None:
        return _forced
    return _env_setting()


def shows_bars() -> bool:
    """Whether :func:`progress` would draw a bar now (resolving terminal detection)."""
    state = enabled()
    if state is None:
        isatty = getattr(sys.stderr, "isatty", None)
        return bool(isatty and isatty())
    return state


def progress(
    iterable: Iterable[Any] | None = None,
    desc: str = "",
    total: int | float | None = None,
    unit: str = "it",
    leave: bool = False,
    show: bool | None = None,
    **kwargs: Any,
) -> Any:
    """A tqdm bar over ``iterable`` (or a manual one, ``iterable=None``: call ``update(n)``).

    Args:
        iterable: what to iterate over; None for a bar updated by hand (also a context manager).
        desc: the bar's label (``"encoding (sentence)"``).
        total: expected number of items (default: ``len(iterable)`` when it has one).
        unit: what one item is (``"batch"``, ``"row"``, ``"step"``).
        leave: keep the finished bar on screen (default: erase it, so nested bars stay tidy).
        show: this bar's own setting (``TrainingArgs.progress``): False hides it, True shows it
            even when stderr is not a terminal; whatever turns all bars off (quiet mode,
            ``set_progress(False)``, ``TEXTRANSFER_PROGRESS=0``) wins. None: the default.
        **kwargs: more tqdm options (``position``, ``postfix``, ...).

    Returns:
        A ``tqdm`` object, disabled (a plain pass-through) when bars are off.
    """
    from tqdm.auto import tqdm

    state = enabled()
    if show is not None and (state is not False or not show):
        state = show  # never True where every bar is off (quiet, other ranks, forced off)
    # A bar that is finished within half a second is not drawn at all (encoding 3 texts), unless
    # bars were asked for explicitly (then tests and users see every one).
    kwargs.setdefault("delay", 0.0 if state else 0.5)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(
        iterable, desc=desc, total=total, unit=unit, leave=leave,
        disable=None if state is None else not state, file=sys.stderr, **kwargs,
    )


def is_quiet() -> bool:
    """True after ``set_quiet(True)`` (``textransfer -q``)."""
    return _quiet


def set_quiet(quiet: bool = True) -> None:
    """``textransfer -q``: no progress bars at all, the dependencies' included.

    Quiet hides textransfer's bars and those of transformers ("Loading weights", "Writing model
    shards"), huggingface_hub, datasets and sentence-transformers: through their environment
    switches for packages not imported yet (so they are not imported here), and through their
    ``disable_progress_bar(s)`` functions for those already imported. ``set_quiet(False)`` also
    hides the dependencies' bars when textransfer's own would not show (stderr is not a terminal,
    or ``TEXTRANSFER_PROGRESS=0``): a log file gets no carriage-return bar lines.

    Log levels are the caller's business (the CLI sets WARNING for ``-q``).
    """
    global _quiet
    _quiet = bool(quiet)
    if _quiet or not shows_bars():
        _silence_dependencies()


def _silence_dependencies() -> None:
    for key, value in _QUIET_ENV.items():
        if key == "TRANSFORMERS_VERBOSITY" and key in os.environ:
            continue  # the user's own choice of transformers log level stays
        os.environ[key] = value
    # Packages imported already have read their environment: call their switches.
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging as tf_logging

        tf_logging.disable_progress_bar()
    if "datasets" in sys.modules:
        from datasets.utils.tqdm import disable_progress_bars as ds_disable

        ds_disable()
