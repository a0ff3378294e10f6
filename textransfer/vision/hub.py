"""torchvision and timm image models by name, when those packages (and their weights) are present.

Neither package is a dependency: without it, building the encoder raises an ImportError naming
what to install. Pretrained weights come from the packages' own caches or downloads; offline
with an empty cache the error says so (use ``pretrained: false`` or the packaged
``efficientnet-lite0`` encoder instead).

Layer groups are read from the model's top-level children in registration order (the forward
order for ResNets, EfficientNets, ConvNeXts, ViTs): the first child holding parameters is
``stem``, the last is ``head``, each one between is ``block.<i>``; a timm model's classifier
is removed first (``num_classes=0``), a torchvision model's last ``fc``/``classifier``/``heads``
is replaced by an identity.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textransfer.encoders.base import register_encoder
from textransfer.vision.base import ImageEncoder
from textransfer.vision.preprocess import IMAGENET_MEAN, IMAGENET_STD

_CLASSIFIERS = ("fc", "classifier", "heads", "head")


def children_groups(module: Any) -> list[tuple[str, list[Any]]]:
    """``stem`` / ``block.i`` / ``head`` groups over the top-level children holding parameters."""
    parts = [list(child.parameters()) for _, child in module.named_children()]
    parts = [ps for ps in parts if ps]
    if len(parts) < 3:
        # Too few children to tell stem, blocks and head apart: one block holds everything.
        return [("block.0", [p for ps in parts for p in ps])]
    return [
        ("stem", parts[0]),
        *[(f"block.{i}", ps) for i, ps in enumerate(parts[1:-1])],
        ("head", parts[-1]),
    ]


class _HubEncoder(ImageEncoder):
    _package = ""

    def __init__(
        self,
        model: str = "resnet18",
        pretrained: bool = True,
        image_size: int = 224,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        weights: str | None = None,
        seed: int = 0,
    ) -> None:
        if not str(model).strip():
            raise ValueError(f"{self.name}: `model` must name an architecture, e.g. resnet18")
        self.model = str(model)
        self.pretrained = bool(pretrained)
        self.seed = int(seed)
        self._dim: int | None = None
        super().__init__(image_size, mean, std, weights)

    def _own_config(self) -> dict[str, Any]:
        return {"model": self.model, "pretrained": self.pretrained, "seed": self.seed}

    @property
    def dim(self) -> int:
        if self._dim is None:
            import torch

            with torch.inference_mode():
                probe = torch.zeros(1, 3, self.preprocess.image_size, self.preprocess.image_size)
                self._dim = int(self._pool(self.module, probe).shape[1])
        return self._dim

    def _pool(self, module: Any, pixels: Any) -> Any:
        out = module(pixels)
        return out.flatten(2).mean(dim=2) if out.ndim > 2 else out

    def layer_groups(self) -> list[tuple[str, list[Any]]]:
        return children_groups(self.module)

    def _build(self) -> Any:
        import torch

        from textransfer._optional import require

        lib = require(self._package, extra="vision-hub", feature=f"the {self.name} encoder")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            try:
                return self._create(lib, self.pretrained and self.weights is None)
            except (OSError, RuntimeError, ValueError) as exc:
                if not self.pretrained:
                    raise
                raise FileNotFoundError(
                    f"{self.name}: cannot get pretrained weights for {self.model!r} ({exc}). Offline, "
                    f"the {self._package} weight cache must already hold them; otherwise use "
                    "pretrained: false, or the packaged encoder efficientnet-lite0"
                ) from None

    def _create(self, lib: Any, pretrained: bool) -> Any:
        raise NotImplementedError


@register_encoder("timm")
class TimmEncoder(_HubEncoder):
    """A timm model by name (``timm.create_model(model, pretrained, num_classes=0)``).

    Example:
        >>> enc = create_encoder("timm", model="resnet18")  # doctest: +SKIP
    """

    _package = "timm"

    def _create(self, lib: Any, pretrained: bool) -> Any:
        return lib.create_model(self.model, pretrained=pretrained, num_classes=0)


@register_encoder("torchvision")
class TorchvisionEncoder(_HubEncoder):
    """A torchvision classification model by name, its classifier replaced by an identity.

    Example:
        >>> enc = create_encoder("torchvision", model="resnet18")  # doctest: +SKIP
    """

    _package = "torchvision"

    def _create(self, lib: Any, pretrained: bool) -> Any:
        from torch import nn

        model = lib.models.get_model(self.model, weights="DEFAULT" if pretrained else None)
        for attr in _CLASSIFIERS:
            if isinstance(getattr(model, attr, None), nn.Module):
                setattr(model, attr, nn.Identity())
                break
        return model
