"""sentence-transformers models (``SentenceTransformer``): encode, and train end to end."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from textransfer._modelfolder import (
    ModelFormatError,
    check_tensor_shapes,
    read_json_object,
    resolve_inside,
)
from textransfer._progress import progress
from textransfer.encoders._fast import (
    LowPrecisionCache,
    count_over_limit,
    length_sorted_batches,
    runner_for,
)
from textransfer.encoders.base import Encoder, register_encoder
from textransfer.encoders.transformer import (
    PretrainedFolderMixin,
    check_hf_folder,
    transformer_layer_groups,
)
from textransfer.precision import Precision, resolve_precision


@register_encoder("sentence")
class SentenceEncoder(PretrainedFolderMixin, Encoder):
    """A sentence-transformers model: its own pooling (and normalisation, when it has a
    ``Normalize`` module) as configured in the model folder.

    Satisfies :class:`~textransfer.encoders.base.TrainableEncoder`. After fine-tuning sets
    ``weights_modified``, :meth:`save` writes the whole model (``SentenceTransformer.save``).

    Args:
        model: packaged name (``all-MiniLM-L6-v2``), local directory, or hub id (online).
        normalize: L2-normalise the embeddings.
        max_length: truncate inputs to this many tokens (default: the model's own limit).
        trust_remote_code: allow model code from the hub (off unless you trust the source).
        precision: ``"auto"`` (default: bf16 where it is faster than fp32, i.e. CPUs with AMX,
            AVX-512 BF16 CPUs where a one-time probe measured it faster, and GPUs with bf16;
            fp32 elsewhere; see :mod:`textransfer.precision`), ``"fp32"``, ``"bf16"`` (:meth:`encode`
            runs a copy with bf16 weights) or ``"int8"`` (CPU only: the model's graph, Dense
            modules included, exported to ONNX on first use and run by onnxruntime with
            dynamic int8 quantisation; needs the ``onnx`` extra). Resolved when the encoder is
            built; :meth:`config` holds the result. Training (:meth:`forward`) always uses the
            fp32 weights.

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
        precision: Precision = "auto",
    ) -> None:
        if max_length is not None and int(max_length) < 1:
            raise ValueError(f"sentence: max_length must be >= 1 or None, got {max_length}")
        self.model = str(model)
        self.normalize = bool(normalize)
        self.max_length = None if max_length is None else int(max_length)
        self.trust_remote_code = bool(trust_remote_code)
        self.precision = resolve_precision(precision, "sentence")
        self.weights_modified = False
        self._module: Any = None
        self._low_precision: dict[str, LowPrecisionCache] = {}

    @property
    def module(self) -> Any:
        """The ``SentenceTransformer`` (``nn.Module``), loaded on first use, in eval mode."""
        if self._module is None:
            from textransfer._optional import require

            st = require("sentence_transformers", feature="the sentence encoder")
            # device="cpu": otherwise sentence-transformers moves itself to a GPU on its own;
            # device placement belongs to the training loop (accelerate).
            self._module = st.SentenceTransformer(
                self._resolve(), device="cpu", trust_remote_code=self.trust_remote_code
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

    def truncated(self, items: list[str]) -> tuple[int, int] | None:
        """``(texts of items longer than the model's token limit, that limit)``; None when the
        model has no tokenizer or no limit."""
        module = self.module
        tokenizer, limit = getattr(module, "tokenizer", None), module.max_seq_length or None
        if not callable(tokenizer) or not limit:
            return None
        return count_over_limit(tokenizer, items, limit), int(limit)

    def _encode(self, items: list[str], batch_size: int) -> np.ndarray:
        """Batches of similar token length through the model's own modules, under
        ``inference_mode``; each batch is written straight into its output rows.

        Texts are tokenised once (to sort them by length). The first batch also goes through the
        model's own preprocessing (``preprocess`` / ``tokenize``); when that gives exactly the
        tensors padded from the single tokenisation, later batches are padded from it instead
        of being tokenised again (one tokenizer call per batch saved). Otherwise every batch
        uses the model's preprocessing."""
        import torch
        import torch.nn.functional as F

        module = self.module
        was_training = module.training
        module.eval()
        device = next(module.parameters()).device
        runner = runner_for(
            self.precision, module, self._low_precision, "sentence",
            features=self._features_graph, example=self._export_example,
        )
        tokenizer = getattr(module, "tokenizer", None)
        batches: Iterable[tuple[np.ndarray, dict[str, Any] | None]]
        if callable(tokenizer):
            batches = length_sorted_batches(tokenizer, items, batch_size, module.max_seq_length or None)
        else:  # no tokenizer: longest in characters first, the model's preprocessing every batch
            lengths = np.fromiter(map(len, items), dtype=np.int64, count=len(items))
            order = np.argsort(-lengths, kind="stable")
            batches = ((order[i : i + batch_size], None) for i in range(0, len(items), batch_size))
        reuse: dict[str, Any] | None = None  # the non-tensor entries of the model's own batches
        out = np.empty((len(items), self.dim), dtype=np.float32)
        try:
            with torch.inference_mode():
                n_batches = -(-len(items) // batch_size)
                bar = progress(batches, desc=f"encoding ({self.name})", total=n_batches, unit="batch")
                for n, (idx, padded) in enumerate(bar):
                    if reuse is not None and padded is not None:
                        batch = {**reuse, **padded}
                    else:
                        batch = self.collate([items[i] for i in idx])
                        if n == 0 and padded is not None and _same_tensors(batch, padded):
                            reuse = {k: v for k, v in batch.items() if k not in padded}
                    if self.precision == "int8":  # onnxruntime: pooled, normalised features
                        out[idx] = runner(batch)
                        continue
                    batch = {k: (v.to(device) if hasattr(v, "to") else v) for k, v in batch.items()}
                    emb = runner(batch)["sentence_embedding"].float()  # a bf16 copy gives bf16
                    if self.normalize:
                        emb = F.normalize(emb, dim=-1)
                    out[idx] = emb.cpu().numpy()
        finally:
            module.train(was_training)
        return out

    def _features_graph(self, module: Any) -> Any:
        """The model's own modules + this encoder's normalisation: tokens -> features (int8)."""
        from textransfer.encoders.onnx_graph import graph_modules

        return graph_modules()["SentenceFeatures"](module, self.normalize)

    def _export_example(self) -> dict[str, Any]:
        from textransfer.encoders.onnx_graph import CHECK_TEXTS

        return self.collate(list(CHECK_TEXTS))

    # -- identity and persistence ----------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "normalize": self.normalize,
            "max_length": self.max_length,
            "trust_remote_code": self.trust_remote_code,
            "precision": self.precision,
        }

    def _save_weights(self, directory: Path) -> None:
        self.module.save(str(directory))

    def _check_folder(self, folder: Path, confined: bool) -> None:
        """Sizes of each saved module against its weights: the transformer's config.json (see
        :func:`check_hf_folder`) and each Dense module's in/out features."""
        max_length = self.max_length if confined else None
        modules_file = folder / "modules.json"
        if not modules_file.exists():  # a plain Hugging Face folder (mean pooling is added)
            check_hf_folder(folder, self.trust_remote_code, max_length)
            return
        try:
            modules = json.loads(modules_file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelFormatError(f"{modules_file} is not valid JSON ({exc})") from None
        if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
            raise ModelFormatError(f"{modules_file} must hold a JSON list of modules")
        for entry in modules:
            sub = resolve_inside(folder, str(entry.get("path", "")), "path", modules_file)
            cfg_path = sub / "config.json"
            if not cfg_path.is_file():
                continue
            cfg = read_json_object(cfg_path)
            if "model_type" in cfg:
                check_hf_folder(sub, self.trust_remote_code, max_length)
            elif "in_features" in cfg and "out_features" in cfg:
                _check_dense(sub, cfg, cfg_path)


def _check_dense(folder: Path, cfg: dict[str, Any], cfg_path: Path) -> None:
    """A Dense module's ``in_features`` / ``out_features`` against its linear layer's shapes."""
    n_in, n_out = cfg["in_features"], cfg["out_features"]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (n_in, n_out)):
        raise ModelFormatError(f"{cfg_path}: in_features / out_features must be positive integers")
    expected: dict[str, tuple[int, ...]] = {"linear.weight": (n_out, n_in)}
    if cfg.get("bias", True):
        expected["linear.bias"] = (n_out,)
    check_tensor_shapes(folder / "model.safetensors", expected, source=cfg_path)


def _same_tensors(batch: dict[str, Any], padded: dict[str, Any]) -> bool:
    """True when ``batch`` holds exactly ``padded``'s tensors (same keys, values, dtypes)."""
    import torch

    tensors = {k for k, v in batch.items() if isinstance(v, torch.Tensor)}
    return tensors == set(padded) and all(
        batch[k].dtype == padded[k].dtype and torch.equal(batch[k], padded[k]) for k in padded
    )
