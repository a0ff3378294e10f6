"""ImageEncoder: what every image encoder shares (preprocessing, batching, weights, save/load).

A subclass implements ``_build() -> nn.Module`` (the backbone, with its initial weights),
``_pool(module, pixels) -> (n, dim)`` features, ``dim``, ``layer_groups()`` and ``_own_config()``
(its own constructor keyword arguments). Everything else — the TrainableEncoder members
``module`` / ``collate`` / ``forward``, frozen encoding, fingerprints, safetensors save/load — is
here, so text and image encoders look the same to strategies.

No torch import at module level: the encoder registry imports this module.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from textransfer._modelfolder import ModelFormatError, check_tensor_shapes, resolve_inside
from textransfer.encoders.base import (
    CONFIG_FILE,
    Encoder,
    modified_fingerprint,
    read_config,
    weights_digest,
    write_config,
)
from textransfer.vision.preprocess import Preprocess

WEIGHTS_FILE = "weights.safetensors"


class ImageEncoder(Encoder):
    """Base of the image encoders (``modality = "image"``); satisfies TrainableEncoder.

    Args:
        image_size: images are resized to ``image_size`` x ``image_size`` pixels.
        mean: per-channel (R, G, B) mean, subtracted from values in 0..1.
        std: per-channel standard deviation.
        weights: a safetensors state dict to start from (e.g. a fine-tuned encoder's
            ``weights.safetensors``); None uses the encoder's own initial weights.
    """

    modality = "image"

    def __init__(
        self,
        image_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        weights: str | None = None,
    ) -> None:
        m, sd = tuple(float(v) for v in mean), tuple(float(v) for v in std)
        self.preprocess = Preprocess(int(image_size), m, sd)  # type: ignore[arg-type]
        self.weights = None if weights is None else str(weights)
        if self.weights is not None and not Path(self.weights).is_file():
            raise FileNotFoundError(
                f"{self.name}: weights file {self.weights} does not exist; pass the "
                f"{WEIGHTS_FILE} of a saved encoder, or weights: null for the initial weights"
            )
        self.weights_modified = self.weights is not None
        self._module: Any = None

    # -- to implement --------------------------------------------------------------------------

    @abstractmethod
    def _build(self) -> Any:
        """The backbone ``nn.Module`` with its initial (pretrained or seeded random) weights."""

    @abstractmethod
    def _pool(self, module: Any, pixels: Any) -> Any:
        """Features ``(n, dim)`` float32 tensor from normalised pixels ``(n, 3, S, S)``."""

    @abstractmethod
    def _own_config(self) -> dict[str, Any]:
        """The subclass's own constructor keyword arguments (JSON-serialisable)."""

    @abstractmethod
    def layer_groups(self) -> list[tuple[str, list[Any]]]:
        """``[(name, [parameters])]`` bottom -> top; blocks named ``<prefix>.<index>``."""

    # -- TrainableEncoder ----------------------------------------------------------------------

    @property
    def module(self) -> Any:
        """The backbone ``nn.Module``, built on first use, in eval mode."""
        if self._module is None:
            module = self._build()
            if self.weights is not None:
                from safetensors.torch import load_file

                try:
                    module.load_state_dict(load_file(self.weights), strict=True)
                except RuntimeError as exc:
                    raise ValueError(
                        f"{self.name}: {self.weights} does not fit this encoder's architecture "
                        f"({str(exc).splitlines()[0]}); check the encoder settings it was saved with"
                    ) from None
            self._module = module.eval()
        return self._module

    def collate(self, items: list[Any]) -> dict[str, Any]:
        """Preprocessed images as ``{"pixel_values": float32 tensor (n, 3, S, S)}``."""
        return {"pixel_values": self.preprocess.batch(items)}

    def forward(self, batch: dict[str, Any]) -> Any:
        """Features ``(n, dim)`` with grad. In training mode, BatchNorm layers whose parameters
        are all frozen run in eval mode: a frozen layer also keeps its running statistics."""
        import torch.nn as nn

        module = self.module
        if module.training:
            for m in module.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    params = list(m.parameters(recurse=False))
                    m.train(not params or any(p.requires_grad for p in params))
        pixels = batch["pixel_values"].to(next(module.parameters()).device)
        return self._pool(module, pixels)

    # -- encoding ------------------------------------------------------------------------------

    def _encode(self, items: list[Any], batch_size: int) -> np.ndarray:
        import torch

        module = self.module
        was_training = module.training
        module.eval()
        out = np.empty((len(items), self.dim), dtype=np.float32)
        try:
            with torch.inference_mode():
                for start in range(0, len(items), max(1, int(batch_size))):
                    chunk = items[start : start + batch_size]
                    out[start : start + len(chunk)] = (
                        self.forward(self.collate(chunk)).float().cpu().numpy()
                    )
        finally:
            module.train(was_training)
        return out

    # -- identity and persistence ----------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        return {**self._own_config(), **self.preprocess.config(), "weights": self.weights}

    def state_digest(self) -> str:
        return weights_digest(self.module) if self.weights_modified else ""

    def fingerprint(self) -> str:
        if not self.weights_modified:
            return super().fingerprint()
        return modified_fingerprint(self, location_key="weights")

    def save(self, directory: str | Path, *, portable: bool = False) -> None:
        """Writes ``encoder.json``; with ``weights_modified`` also ``weights.safetensors``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        cfg = self.config()
        if self.weights_modified:
            from safetensors.torch import save_file

            state = {k: v.detach().cpu().contiguous() for k, v in self.module.state_dict().items()}
            save_file(state, str(d / WEIGHTS_FILE))
            cfg["weights"] = WEIGHTS_FILE  # relative to the directory, resolved by load
        write_config(d, cfg)

    @classmethod
    def load(
        cls, directory: str | Path, *, trust_remote_code: bool = False, confined: bool = False
    ) -> ImageEncoder:
        """Rebuilds a saved encoder. ``weights`` is relative to the folder (``confined``: must
        stay inside it); its shapes are checked against the architecture, built on the meta
        device, before the network is allocated."""
        d = Path(directory).resolve()
        kwargs = read_config(d)
        weights = kwargs.get("weights")
        if weights is not None:
            if not isinstance(weights, str):
                raise ModelFormatError(f"{d / CONFIG_FILE}: weights must be a file name or null")
            if confined:
                kwargs["weights"] = str(resolve_inside(d, weights, "weights", d / CONFIG_FILE))
            else:
                kwargs["weights"] = str((d / Path(weights).expanduser()).resolve())
        enc = cls(**kwargs)
        if enc.weights is not None:
            enc._check_weights(d / CONFIG_FILE)
        return enc

    def _check_weights(self, source: Path) -> None:
        import torch

        with torch.device("meta"):  # shapes only: a JSON asking for huge layers allocates nothing
            probe = self._build()
        expected = {k: tuple(v.shape) for k, v in probe.state_dict().items()}
        check_tensor_shapes(Path(str(self.weights)), expected, source=source)
