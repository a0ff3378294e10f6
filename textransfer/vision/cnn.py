"""A small convolutional network with seeded random weights: the no-transfer image baseline.

Trained from scratch with the ``finetune`` strategy (nothing is frozen by default), it answers
"how far does the same data get without ImageNet?", as TF-IDF does for text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textransfer.encoders.base import register_encoder
from textransfer.vision.base import ImageEncoder


def _build_cnn(channels: list[int], dim: int) -> Any:
    from torch import nn

    def conv(cin: int, cout: int, stride: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
        )

    blocks = [conv(channels[i], channels[i + 1], 2) for i in range(len(channels) - 1)]
    return nn.ModuleDict(
        {
            "stem": conv(3, channels[0], 1),
            "blocks": nn.ModuleList(blocks),
            "head": nn.Sequential(nn.Conv2d(channels[-1], dim, 1), nn.ReLU()),
        }
    )


@register_encoder("cnn")
class SmallCNNEncoder(ImageEncoder):
    """``stem`` conv -> one stride-2 conv block per extra channel width -> 1x1 ``head`` conv ->
    global average pooling into ``dim`` features. Random init seeded by ``seed``.

    ``layer_groups()``: ``stem``, ``block.0`` .. ``block.{len(channels)-2}``, ``head``.

    Args:
        channels: widths of the stem and of each block, e.g. ``[16, 32, 64]`` (stem 16, two
            blocks); each block halves the resolution.
        dim: feature size (channels of the head conv).
        image_size: resize side in pixels (28-32 suits digits).
        mean: per-channel mean (default 0.5: values scaled to -1..1).
        std: per-channel standard deviation.
        seed: seeds the random initial weights.
        weights: a safetensors state dict to start from (a trained encoder's file).

    Example:
        >>> enc = create_encoder("cnn", channels=[8, 16], dim=32, image_size=28)  # doctest: +SKIP
        >>> enc.encode([np.zeros((28, 28), np.uint8)]).shape  # doctest: +SKIP
        (1, 32)
    """

    def __init__(
        self,
        channels: Sequence[int] = (16, 32, 64),
        dim: int = 128,
        image_size: int = 32,
        mean: Sequence[float] = (0.5, 0.5, 0.5),
        std: Sequence[float] = (0.5, 0.5, 0.5),
        seed: int = 0,
        weights: str | None = None,
    ) -> None:
        chans = [int(c) for c in channels]
        if len(chans) < 2 or min(chans) < 1:
            raise ValueError(
                f"cnn: channels must list at least two positive widths (stem + one block), got {list(channels)}"
            )
        if int(dim) < 1:
            raise ValueError(f"cnn: dim must be >= 1, got {dim}")
        self.channels = chans
        self._dim = int(dim)
        self.seed = int(seed)
        super().__init__(image_size, mean, std, weights)

    @property
    def dim(self) -> int:
        return self._dim

    def _own_config(self) -> dict[str, Any]:
        return {"channels": list(self.channels), "dim": self._dim, "seed": self.seed}

    def _build(self) -> Any:
        import torch

        # Seed locally: building an encoder must not move the caller's random stream.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return _build_cnn(self.channels, self._dim)

    def _pool(self, module: Any, pixels: Any) -> Any:
        x = module["stem"](pixels)
        for block in module["blocks"]:
            x = block(x)
        return module["head"](x).mean(dim=(2, 3))

    def layer_groups(self) -> list[tuple[str, list[Any]]]:
        """``[("stem", ...), ("block.0", ...), ..., ("head", ...)]``, bottom -> top."""
        m = self.module
        groups: list[tuple[str, list[Any]]] = [("stem", list(m["stem"].parameters()))]
        groups += [(f"block.{i}", list(b.parameters())) for i, b in enumerate(m["blocks"])]
        groups.append(("head", list(m["head"].parameters())))
        return groups
