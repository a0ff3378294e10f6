"""Declarative freezing, gradual unfreezing and layer-wise learning rates over ``layer_groups()``.

Everything here works on the ``[(group_name, [parameters])]`` list that a
:class:`~textransfer.encoders.base.TrainableEncoder` returns, ordered bottom -> top. The groups
are read by position and by one naming convention, so text and vision encoders share this code:

- *layers* are the groups whose name ends in ``.<number>`` (``layer.0``, ``block.3``);
- *input* groups come before the first layer (``embeddings``, a CNN stem);
- *top* groups come after the last layer (``pooler``, a final norm).

No torch import at module level: this file is imported by the strategy registry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_NUMBERED = re.compile(r"\.\d+$")


@dataclass(frozen=True)
class FreezeSpec:
    """Which encoder groups train, and when.

    Attributes:
        freeze_embeddings: keep the input groups (before the first layer) fixed throughout.
        freeze_bottom: keep the bottom ``k`` layers fixed throughout (Yosinski et al. 2014).
        gradual_unfreezing: ULMFiT schedule: epoch 0 trains the head only, and each further
            epoch unfreezes one more encoder group from the top (never a fixed one).
    """

    freeze_embeddings: bool = False
    freeze_bottom: int = 0
    gradual_unfreezing: bool = False

    def __post_init__(self) -> None:
        if int(self.freeze_bottom) != self.freeze_bottom or self.freeze_bottom < 0:
            raise ValueError(f"finetune: freeze_bottom must be an integer >= 0, got {self.freeze_bottom!r}")


def split_groups(names: list[str]) -> tuple[list[int], list[int], list[int]]:
    """Indices of the input, layer and top groups of ``names`` (see the module docstring).

    Raises:
        ValueError: when no group is a numbered layer.
    """
    layers = [i for i, n in enumerate(names) if _NUMBERED.search(n)]
    if not layers:
        raise ValueError(
            f"encoder layer groups {names} contain no numbered layer (e.g. 'layer.0'); "
            "layer_groups() must name its blocks '<prefix>.<index>'"
        )
    first, last = layers[0], layers[-1]
    return list(range(first)), layers, list(range(last + 1, len(names)))


class FreezePlan:
    """A :class:`FreezeSpec` applied to one encoder's groups.

    Args:
        groups: ``encoder.layer_groups()``, bottom -> top.
        spec: what to freeze.

    Raises:
        ValueError: ``freeze_bottom`` larger than the encoder's layer count (the message names
            the count).
    """

    def __init__(self, groups: list[tuple[str, list[Any]]], spec: FreezeSpec) -> None:
        self.names = [n for n, _ in groups]
        self.params = [list(ps) for _, ps in groups]
        self.spec = spec
        inputs, layers, _ = split_groups(self.names)
        if spec.freeze_bottom > len(layers):
            raise ValueError(
                f"finetune: freeze_bottom={spec.freeze_bottom}, but the encoder has only "
                f"{len(layers)} layers ({self.names[layers[0]]} .. {self.names[layers[-1]]}); "
                f"use a value from 0 to {len(layers)}"
            )
        fixed = set(layers[: spec.freeze_bottom])
        if spec.freeze_embeddings:
            fixed |= set(inputs)
        self.fixed = fixed
        self.excluded: set[int] = set()  # ids of parameters no gradient reaches (see exclude)

    def exclude(self, params: list[Any]) -> None:
        """Keeps ``params`` frozen for good (e.g. a pooler the forward pass never uses)."""
        self.excluded |= {id(p) for p in params}

    def _trainable(self, i: int) -> list[Any]:
        return [p for p in self.params[i] if id(p) not in self.excluded]

    @property
    def unfreezable(self) -> list[int]:
        """Group indices that train at some point, bottom -> top (fixed / unused ones left out)."""
        return [i for i in range(len(self.names)) if i not in self.fixed and self._trainable(i)]

    @property
    def num_stages(self) -> int:
        """Gradual-unfreezing stages: head only, then one more group each, up to all of them."""
        return len(self.unfreezable) + 1

    def active_groups(self, stage: int | None = None) -> list[str]:
        """Names of the encoder groups that train at ``stage`` (None: no gradual schedule)."""
        groups = self.unfreezable
        if stage is not None:
            groups = groups[len(groups) - min(stage, len(groups)) :]
        return [self.names[i] for i in groups]

    def apply(self, stage: int | None = None) -> None:
        """Sets ``requires_grad`` on every encoder parameter for ``stage``.

        Args:
            stage: gradual-unfreezing stage (0: head only, ``s``: the top ``s`` unfreezable
                groups); None trains every group that is not fixed.
        """
        active = set(self.active_groups(stage))
        for i, name in enumerate(self.names):
            on = name in active
            for p in self.params[i]:
                p.requires_grad_(on and id(p) not in self.excluded)

    def optimizer_groups(
        self, head_params: list[Any], lr: float, head_lr: float | None, layer_lr_decay: float, weight_decay: float
    ) -> list[dict[str, Any]]:
        """AdamW parameter groups with layer-wise learning rates.

        The top unfreezable encoder group gets ``lr``, the one below ``lr * layer_lr_decay``,
        then ``lr * layer_lr_decay**2`` and so on down to the input group (Howard & Ruder 2018's
        discriminative fine-tuning); the head gets ``head_lr`` (default ``lr``). Biases and norm
        weights (1-D tensors) get no weight decay. Groups that may train at some stage are all
        included, so gradual unfreezing needs no new optimizer (AdamW skips parameters whose
        gradient is None).

        Returns:
            ``[{"params", "lr", "weight_decay", "group"}]``; ``group`` names the layer group
            (``"head"`` for the head), with a ``/no_decay`` suffix for biases and norms.
        """
        named: list[tuple[str, float, list[Any]]] = []
        order = self.unfreezable
        for depth, i in enumerate(reversed(order)):
            named.append((self.names[i], lr * layer_lr_decay**depth, self._trainable(i)))
        named.append(("head", lr if head_lr is None else head_lr, list(head_params)))
        groups: list[dict[str, Any]] = []
        for name, group_lr, params in named:
            decay = [p for p in params if p.ndim >= 2]
            no_decay = [p for p in params if p.ndim < 2]
            if decay:
                groups.append({"params": decay, "lr": group_lr, "weight_decay": weight_decay, "group": name})
            if no_decay:
                groups.append({"params": no_decay, "lr": group_lr, "weight_decay": 0.0, "group": f"{name}/no_decay"})
        return groups


def count_parameters(module: Any) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts of ``module`` (shared tensors counted once)."""
    seen: set[int] = set()
    trainable = total = 0
    for p in module.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return trainable, total
