"""sentence-transformers models (``SentenceTransformer``): encode, and train end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from textransfer.encoders.base import CONFIG_FILE, Encoder, register_encoder
from textransfer.encoders.transformer import (
    modified_fingerprint,
    transformer_layer_groups,
    weights_digest,
)
from textransfer.resources import resolve_model


@register_encoder("sentence")
class SentenceEncoder(Encoder):
    """A sentence-transformers model: its own pooling (and normalisation, when it has a
    ``Normalize`` module) as configured in the model folder.

    Satisfies :class:`~textransfer.encoders.base.TrainableEncoder`. After fine-tuning sets
    ``weights_modified``, :meth:`save` writes the whole model (``SentenceTransformer.save``).

    Args:
        model: packaged name (``all-MiniLM-L6-v2``), local directory, or hub id (online).
        normalize: L2-normalise the embeddings.
        max_length: truncate inputs to this many tokens (default: the model's own limit).
        trust_remote_code: allow model code from the hub (off unless you trust the source).

    Example:
        >>> enc = SentenceEncoder("all-MiniLM-L6-v2", normalize=True)  # doctest: +SKIP
        >>> enc.encode(["a fine film"]).shape  # doctest: +SKIP
        (1, 384)
    """

    def __init__(
        self,
        model: str = "all-MiniLM-L6-v2",
        normalize: bool = False,
        max_length: int | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        if max_length is not None and int(max_length) < 1:
            raise ValueError(f"sentence: max_length must be >= 1 or None, got {max_length}")
        self.model = str(model)
        self.normalize = bool(normalize)
        self.max_length = None if max_length is None else int(max_length)
        self.trust_remote_code = bool(trust_remote_code)
        self.weights_modified = False
        self._module: Any = None

    @property
    def module(self) -> Any:
        """The ``SentenceTransformer`` (``nn.Module``), loaded on first use, in eval mode."""
        if self._module is None:
            from textransfer._optional import require

            st = require("sentence_transformers", feature="the sentence encoder")
            # device="cpu": otherwise sentence-transformers moves itself to a GPU on its own;
            # device placement belongs to the training loop (accelerate).
            self._module = st.SentenceTransformer(
                resolve_model(self.model), device="cpu", trust_remote_code=self.trust_remote_code
            ).eval()
            if self.max_length is not None:
                self._module.max_seq_length = self.max_length
        return self._module

    @property
    def dim(self) -> int:
        module = self.module
        get = (
            getattr(module, "get_embedding_dimension", None)
            or module.get_sentence_embedding_dimension
        )
        value = get()
        if value is None:
            raise ValueError(f"sentence: {self.model!r} does not declare its embedding dimension")
        return int(value)

    def _backbone(self) -> Any:
        first = self.module[0]
        backbone = getattr(first, "auto_model", None)
        if backbone is None:
            backbone = getattr(first, "model", None)
        if backbone is None:
            raise ValueError(
                f"sentence: the first module of {self.model!r} ({type(first).__name__}) is not a "
                "Hugging Face transformer; layer groups need one"
            )
        return backbone

    # -- TrainableEncoder ----------------------------------------------------------------------

    def collate(self, items: list[str]) -> dict[str, Any]:
        """The model's own tokenisation of ``items`` (dict of tensors, padded to the longest)."""
        module = self.module
        # sentence-transformers >= 6 renamed `tokenize` to `preprocess`.
        prep = getattr(module, "preprocess", None) or module.tokenize
        return dict(prep(list(items)))

    def forward(self, batch: dict[str, Any]) -> Any:
        """Sentence embeddings ``(n, dim)`` as a tensor with grad."""
        import torch.nn.functional as F

        module = self.module
        device = next(module.parameters()).device
        inputs = {k: (v.to(device) if hasattr(v, "to") else v) for k, v in batch.items()}
        emb = module(inputs)["sentence_embedding"]
        return F.normalize(emb, dim=-1) if self.normalize else emb

    def layer_groups(self) -> list[tuple[str, list[Any]]]:
        """``embeddings``, ``layer.0`` .. ``layer.{L-1}``, ``pooler`` (incl. any Dense modules)."""
        return transformer_layer_groups(self._backbone(), root=self.module)

    # -- encoding ------------------------------------------------------------------------------

    def _encode(self, items: list[str], batch_size: int) -> np.ndarray:
        module = self.module
        was_training = module.training
        try:
            # encode() sorts by length and restores the order itself.
            out = module.encode(
                items,
                batch_size=batch_size,
                convert_to_numpy=True,
                normalize_embeddings=self.normalize,
                show_progress_bar=False,
            )
        finally:
            module.train(was_training)
        return np.asarray(out, dtype=np.float32)

    # -- identity and persistence ----------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "normalize": self.normalize,
            "max_length": self.max_length,
            "trust_remote_code": self.trust_remote_code,
        }

    def state_digest(self) -> str:
        return weights_digest(self.module) if self.weights_modified else ""

    def fingerprint(self) -> str:
        return super().fingerprint() if not self.weights_modified else modified_fingerprint(self)

    def save(self, directory: str | Path) -> None:
        """Writes the config; with ``weights_modified``, also the whole model (safetensors)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        cfg = self.config()
        if self.weights_modified:
            self.module.save(str(d))
            cfg["model"] = "."  # relative to the directory, resolved by load
        (d / CONFIG_FILE).write_text(json.dumps(cfg, indent=2, sort_keys=True))

    @classmethod
    def load(cls, directory: str | Path) -> SentenceEncoder:
        d = Path(directory).resolve()
        kwargs = json.loads((d / CONFIG_FILE).read_text())
        modified = kwargs.get("model") == "."
        if modified:
            kwargs["model"] = str(d)
        enc = cls(**kwargs)
        enc.weights_modified = modified
        return enc
