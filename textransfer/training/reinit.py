"""Re-initialise the layer groups of a TrainableEncoder above the bottom ``k`` (Yosinski et al.
2014, "How transferable are features in deep neural networks?").

Works on ``layer_groups()`` (bottom -> top), so on text and image encoders alike. Every module
that owns a parameter of a re-initialised group is reset: Hugging Face models (they carry
``config.initializer_range``) get their own scheme (``Linear`` / ``Embedding`` weights from
N(0, range), zero biases), every other module its ``reset_parameters()`` (PyTorch's default
init; BatchNorm also forgets its running statistics).

Imported lazily (torch at module level).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def _initializer_range(module: nn.Module) -> float | None:
    for sub in module.modules():
        value = getattr(getattr(sub, "config", None), "initializer_range", None)
        if isinstance(value, float):
            return value
    return None


@torch.no_grad()
def _reset(module: nn.Module, std: float | None) -> None:
    if std is not None and isinstance(module, (nn.Linear, nn.Embedding)):
        module.weight.normal_(0.0, std)
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            module.weight[module.padding_idx].zero_()
        bias = getattr(module, "bias", None)
        if bias is not None:
            bias.zero_()
    elif callable(reset := getattr(module, "reset_parameters", None)):
        reset()
    else:
        raise ValueError(
            f"cannot re-initialise {type(module).__name__}: it owns parameters but has no reset_parameters()"
        )


def group_count(encoder: Any) -> int:
    """``L``: the number of layer groups of ``encoder`` (embeddings/stem, blocks, top)."""
    return len(encoder.layer_groups())


def check_k(k: int, groups: list[tuple[str, list[Any]]]) -> None:
    """Raises a ValueError naming ``L`` when ``k`` is not in ``0..L``."""
    n = len(groups)
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= n:
        names = ", ".join(name for name, _ in groups)
        raise ValueError(f"k={k!r} is outside 0..L with L={n} layer groups ({names})")


def reinitialise_above(encoder: Any, k: int, seed: int = 0) -> list[str]:
    """Keeps the bottom ``k`` layer groups of ``encoder`` and re-initialises all the others.

    Args:
        encoder: a TrainableEncoder.
        k: groups kept, ``0 <= k <= L`` (``L = len(encoder.layer_groups())``); 0 re-initialises
            everything, ``L`` nothing.
        seed: seeds the new random weights (the caller's random stream is left unchanged).

    Returns:
        The names of the re-initialised groups.

    Raises:
        ValueError: ``k`` outside ``0..L`` (the message names ``L``), or a module that mixes
            kept and re-initialised parameters or cannot be reset.

    Example:
        >>> reinitialise_above(create_encoder("cnn", channels=[4, 8]), k=2)  # doctest: +SKIP
        ['block.0', 'head']
    """
    groups = encoder.layer_groups()
    check_k(k, groups)
    reset = {id(p) for _, params in groups[k:] for p in params}
    if not reset:
        return []
    module = encoder.module
    std = _initializer_range(module)
    done: set[int] = set()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for sub in module.modules():
            own = [p for p in sub.parameters(recurse=False) if id(p) not in done]
            hit = [p for p in own if id(p) in reset]
            if not hit:
                continue
            if len(hit) != len(own):
                raise ValueError(
                    f"{type(sub).__name__} holds parameters of a kept and of a re-initialised layer group; "
                    "layer_groups() must split the encoder along module boundaries"
                )
            _reset(sub, std)
            done |= {id(p) for p in own}
    missed = reset - done
    if missed:
        raise ValueError(
            f"{len(missed)} parameters of the re-initialised groups belong to no module of the encoder"
        )
    if hasattr(encoder, "weights_modified"):
        encoder.weights_modified = True  # its features are no longer the pretrained ones
    return [name for name, _ in groups[k:]]
