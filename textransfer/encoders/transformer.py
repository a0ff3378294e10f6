"""Hugging Face transformer (``AutoModel``) with mean or CLS pooling; trainable end to end.

Also home of :func:`transformer_layer_groups`, the one place that knows how to split a transformer
into embeddings / layer 0..L-1 / top, which the sentence encoder reuses.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from textransfer._modelfolder import (
    RESAVE_FIX,
    ModelFormatError,
    check_no_code,
    read_json_object,
    resolve_inside,
    tensor_shapes,
)
from textransfer._progress import progress
from textransfer.encoders._fast import (
    LowPrecisionCache,
    count_over_limit,
    length_sorted_batches,
    pad_token_rows,
    precision_digest,
    runner_for,
)
from textransfer.encoders.base import (
    CONFIG_FILE,
    Encoder,
    modified_fingerprint,
    read_config,
    register_encoder,
    weights_digest,
    write_config,
)
from textransfer.precision import Precision, resolve_precision
from textransfer.resources import is_hub_id, is_registered, resolve_model

# Where transformer families keep their stack of blocks, most common first
# (BERT/RoBERTa/ELECTRA, DistilBERT, GPT-2, T5/BART encoders, Llama-style, XLNet, ...).
_LAYER_PATHS = (
    "encoder.layer",
    "transformer.layer",
    "encoder.layers",
    "transformer.layers",
    "layers",
    "h",
    "transformer.h",
    "layer",
    "encoder.block",
    "block",
    "model.layers",
)


def _get(module: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module


def find_layer_stack(model: Any) -> Any:
    """The ``nn.ModuleList`` of a transformer's blocks (e.g. ``encoder.layer`` of BERT).

    Raises:
        ValueError: naming the model type, when no known layout matches.
    """
    import torch.nn as nn

    for path in _LAYER_PATHS:
        found = _get(model, path)
        if isinstance(found, nn.ModuleList) and len(found) > 0:
            return found
    model_type = getattr(getattr(model, "config", None), "model_type", type(model).__name__)
    raise ValueError(
        f"cannot find the stack of transformer layers in a {model_type!r} model "
        f"({type(model).__name__}); looked for {', '.join(_LAYER_PATHS)}. Add its attribute path "
        "to textransfer.encoders.transformer._LAYER_PATHS"
    )


def transformer_layer_groups(model: Any, root: Any = None) -> list[tuple[str, list[Any]]]:
    """Splits parameters into groups ordered bottom -> top, for freezing and layer-wise lrs.

    Groups: ``embeddings`` (everything registered before the layer stack), ``layer.0`` ..
    ``layer.{L-1}``, and ``pooler`` (everything after: pooler, final norm, and any parameter of
    ``root`` outside ``model``, e.g. a sentence-transformers Dense module). Every parameter of
    ``root`` (default ``model``) is in exactly one group; shared (tied) parameters once.

    Args:
        model: the transformer backbone (a Hugging Face ``PreTrainedModel``).
        root: the module whose parameters must all be covered (defaults to ``model``).

    Returns:
        ``[(name, [nn.Parameter, ...]), ...]``; empty groups are left out.
    """
    root = model if root is None else root
    layers = find_layer_stack(model)
    seen: set[int] = set()
    layer_groups: list[tuple[str, list[Any]]] = []
    for i, block in enumerate(layers):
        params = []
        for p in block.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                params.append(p)
        layer_groups.append((f"layer.{i}", params))
    # Registration order follows the forward pass in HF models (embeddings, blocks, pooler), so
    # what comes before the first block is the input side and what comes after is the top.
    first_block = {id(p) for p in layers[0].parameters()}
    bottom: list[Any] = []
    top: list[Any] = []
    past_layers = False
    for _, p in root.named_parameters():
        if id(p) in first_block:
            past_layers = True
        if id(p) in seen:
            continue
        seen.add(id(p))
        (top if past_layers else bottom).append(p)
    # The input embedding matrix belongs at the bottom even if it is tied to an output head.
    get_emb = getattr(model, "get_input_embeddings", None)
    emb = get_emb() if callable(get_emb) else None
    if emb is not None:
        emb_ids = {id(p) for p in emb.parameters()}
        moved = [p for p in top if id(p) in emb_ids]
        top = [p for p in top if id(p) not in emb_ids]
        bottom.extend(moved)
    if not bottom:
        model_type = getattr(getattr(model, "config", None), "model_type", type(model).__name__)
        raise ValueError(f"found no embedding parameters before the layer stack of {model_type!r}")
    groups = [("embeddings", bottom), *layer_groups]
    if top:
        groups.append(("pooler", top))
    return [(name, ps) for name, ps in groups if ps]


def pool_hidden(hidden: Any, attention_mask: Any, pooling: str) -> Any:
    """Pools token states ``(n, t, d)`` to ``(n, d)``: mean over the attention mask, or token 0."""
    if pooling == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


def _weight_shapes(folder: Path) -> tuple[dict[str, tuple[int, ...]], dict[str, Path]]:
    """Shapes of every tensor in the folder's ``*.safetensors`` files (headers only), and the
    file each one is in."""
    shapes: dict[str, tuple[int, ...]] = {}
    where: dict[str, Path] = {}
    for file in sorted(folder.glob("*.safetensors")):
        for name, shape in tensor_shapes(file).items():
            shapes[name], where[name] = shape, file
    if not shapes:
        raise ModelFormatError(
            f"{folder} holds no weights (no *.safetensors file next to config.json); {RESAVE_FIX}"
        )
    return shapes, where


def check_hf_folder(folder: Path, trust_remote_code: bool, max_length: int | None = None) -> None:
    """Checks a saved Hugging Face model folder before any weight is allocated.

    The sizes in ``config.json`` must agree with the tensor shapes in the safetensors headers:
    counts of layers or experts may not exceed the number of tensors; then the model is built
    on the meta device (no memory) and every tensor it expects must be in the files with the
    same shape (up to 1% of the elements may be missing, as renamed norms in old checkpoints
    are). ``max_length``, when given, may not exceed the position embeddings.

    Raises:
        ModelFormatError: naming the file and the setting that disagree.
    """
    import torch

    from textransfer._optional import require

    cfg_path = folder / "config.json"
    raw = read_json_object(cfg_path)
    shapes, where = _weight_shapes(folder)
    for key, value in raw.items():
        # A layer or expert has at least one tensor; a bigger count would only build modules.
        counts_modules = "layer" in key or "expert" in key
        if counts_modules and isinstance(value, int) and not isinstance(value, bool) and value > len(shapes):
            raise ModelFormatError(
                f"{cfg_path}: {key} = {value}, but the weights hold only {len(shapes)} tensors; "
                f"the settings do not belong to these weights; {RESAVE_FIX}"
            )
    tf = require("transformers", feature="the transformer encoder")
    config = tf.AutoConfig.from_pretrained(str(folder), trust_remote_code=trust_remote_code)
    with torch.device("meta"):
        model = tf.AutoModel.from_config(config, trust_remote_code=trust_remote_code)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    prefix = f"{getattr(model, 'base_model_prefix', '')}."
    for name in list(shapes):  # a checkpoint of a task model keeps its backbone under a prefix
        if name not in expected and name.startswith(prefix) and name[len(prefix) :] in expected:
            bare = name[len(prefix) :]
            shapes[bare], where[bare] = shapes.pop(name), where.pop(name)
    for name, shape in expected.items():
        if name in shapes and shapes[name] != shape:
            raise ModelFormatError(
                f"{where[name]}: tensor {name!r} has shape {list(shapes[name])} but {cfg_path} "
                f"implies {list(shape)}; the weights and the settings come from different models "
                f"(or one was edited); {RESAVE_FIX}"
            )
    numel = {name: int(np.prod(shape)) for name, shape in expected.items()}
    missing = [name for name in expected if name not in shapes]
    if sum(numel[n] for n in missing) > 0.01 * max(sum(numel.values()), 1):
        raise ModelFormatError(
            f"{folder}: the weights lack {len(missing)} of the {len(expected)} tensors that "
            f"{cfg_path} implies (e.g. {missing[0]!r}); they would be random, not trained; "
            + RESAVE_FIX
        )
    positions = getattr(config, "max_position_embeddings", None)
    if max_length is not None and isinstance(positions, int) and max_length > positions:
        raise ModelFormatError(
            f"{folder / CONFIG_FILE}: max_length {max_length} exceeds the {positions} positions "
            f"of the model ({cfg_path}); longer inputs would fail. Save it with max_length <= "
            f"{positions}"
        )


class PretrainedFolderMixin:
    """Identity and persistence of encoders that wrap a pretrained model folder.

    A registered model (``all-MiniLM-L6-v2``) or a hub id is referenced by name in the JSON
    config. The weights are written into the saved folder, which the config then names as
    ``"."`` (resolved by :meth:`load`), after fine-tuning (``weights_modified``) and, on a
    ``portable`` save, when ``model`` is a local folder: a saved model never points at the
    trainer's files; with ``include_resources``, also when it is a registered or hub model. Subclasses implement ``_save_weights(directory)`` and
    ``_check_folder(folder, confined)``.
    """

    weights_modified: bool
    module: Any
    model: str
    trust_remote_code: bool
    # Set by a confined load: `model` is a name from a received folder, so it must resolve to
    # the package or the hub, never to a folder of that name in the working directory.
    _hub_only: bool = False

    def _save_weights(self, directory: Path) -> None:
        raise NotImplementedError

    def _check_folder(self, folder: Path, confined: bool) -> None:
        raise NotImplementedError

    def _resolve(self) -> str:
        return resolve_model(self.model, local=not self._hub_only)

    def _local_folder(self) -> bool:
        return not is_registered(self.model, "model") and Path(self.model).expanduser().is_dir()

    def state_digest(self) -> str:
        digest = weights_digest(self.module) if self.weights_modified else ""
        # int8 / bf16 features depend on the scheme too: a new scheme, new cache keys.
        return digest + precision_digest(getattr(self, "precision", "fp32"))

    def fingerprint(self) -> str:
        if self.weights_modified:
            return modified_fingerprint(self, location_key="model")  # type: ignore[arg-type]
        return super().fingerprint()  # type: ignore[misc]

    def save(self, directory: str | Path, *, portable: bool = False, include_resources: bool = False) -> None:
        """Writes the config; with ``weights_modified`` (or ``portable`` and a local model
        folder, or ``include_resources``) also the weights (safetensors) and tokenizer, named
        ``"."`` in the config.

        Args:
            directory: the encoder's folder.
            portable: copy a model found by a local path into the folder.
            include_resources: also copy a registered model (``all-MiniLM-L6-v2``) or a hub
                model, so that loading needs neither its package nor the hub
                (``Classifier.save(dir, portable=True)``).
        """
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        cfg = self.config()  # type: ignore[attr-defined]
        if self.weights_modified or include_resources or (portable and self._local_folder()):
            self._save_weights(d)
            cfg["model"] = "."  # relative to the directory, resolved by load
        write_config(d, cfg)

    @classmethod
    def load(
        cls, directory: str | Path, *, trust_remote_code: bool = False, confined: bool = False,
        precision: Precision | None = None,
    ) -> Any:
        """Rebuilds a saved encoder (see :meth:`Encoder.load`). Weights in the folder are
        checked first: no shipped code unless ``trust_remote_code``, sizes against shapes.
        ``precision`` replaces the saved one (None: run at the saved precision)."""
        d = Path(directory).resolve()
        source = d / CONFIG_FILE
        kwargs = read_config(d)
        if precision is not None:
            kwargs["precision"] = precision
        model = kwargs.get("model", "all-MiniLM-L6-v2")
        if not isinstance(model, str) or not model:
            raise ModelFormatError(f"{source}: model must be a name or '.', got {model!r}")
        folder: Path | None = None
        hub_only = False
        if model == "." or model.startswith("./"):
            folder = resolve_inside(d, model, "model", source) if confined else (d / model).resolve()
        elif confined and (is_registered(model, "model") or is_hub_id(model)):
            hub_only = True
        elif confined:
            folder = resolve_inside(d, model, "model", source)  # raises unless inside the folder
        if folder is not None:
            kwargs["model"] = str(folder)
        build: Callable[..., Any] = cls  # a subclass, whose constructor takes the config's keys
        enc = build(**kwargs, trust_remote_code=trust_remote_code)
        enc.weights_modified = folder is not None
        enc._hub_only = hub_only
        if folder is not None:
            check_no_code(folder, trust_remote_code)
            enc._check_folder(folder, confined)
        return enc


@register_encoder("transformer")
class TransformerEncoder(PretrainedFolderMixin, Encoder):
    """A Hugging Face ``AutoModel`` whose token states are pooled into one vector per text.

    Satisfies :class:`~textransfer.encoders.base.TrainableEncoder`: fine-tuning trains
    :attr:`module` through :meth:`collate` / :meth:`forward` and sets ``weights_modified``, after
    which :meth:`save` writes the weights (``save_pretrained``, safetensors) instead of a
    reference to the pretrained name.

    Args:
        model: packaged name (``all-MiniLM-L6-v2``), local directory, or hub id (online).
        pooling: ``"mean"`` over non-padding tokens, or the first (``"cls"``) token's state.
        max_length: truncate inputs to this many tokens.
        normalize: L2-normalise the pooled vectors.
        trust_remote_code: allow model code from the hub (off unless you trust the source).
        precision: ``"auto"`` (default: bf16 where it is faster than fp32, i.e. CPUs with AMX,
            AVX-512 BF16 CPUs where a one-time probe measured it faster, and GPUs with bf16;
            fp32 elsewhere; see :mod:`textransfer.precision`), ``"fp32"``, ``"bf16"`` (:meth:`encode`
            runs a copy with bf16 weights) or ``"int8"`` (CPU only: the model and pooling
            exported to ONNX on first use, tens of seconds for MiniLM, and run by onnxruntime
            with dynamic int8 quantisation; needs the ``onnx`` extra; features at mean cosine
            0.99 to fp32).
            Resolved when the encoder is built; :meth:`config` holds the result. Training
            (:meth:`forward`) always uses the fp32 weights.
        pretrained: False builds the same architecture (and tokenizer) with random weights:
            the no-transfer baseline of a learning curve, trained from scratch.
        seed: seeds the random weights when ``pretrained`` is False.

    Example:
        >>> enc = TransformerEncoder("all-MiniLM-L6-v2")  # doctest: +SKIP
        >>> enc.encode(["a fine film", "dull"]).shape  # doctest: +SKIP
        (2, 384)
    """

    def __init__(
        self,
        model: str = "all-MiniLM-L6-v2",
        pooling: Literal["cls", "mean"] = "mean",
        max_length: int = 128,
        normalize: bool = False,
        trust_remote_code: bool = False,
        precision: Precision = "auto",
        pretrained: bool = True,
        seed: int = 0,
    ) -> None:
        if pooling not in ("cls", "mean"):
            raise ValueError(f"transformer: pooling must be 'cls' or 'mean', got {pooling!r}")
        if int(max_length) < 1:
            raise ValueError(f"transformer: max_length must be >= 1, got {max_length}")
        self.model = str(model)
        self.pooling = pooling
        self.max_length = int(max_length)
        self.normalize = bool(normalize)
        self.trust_remote_code = bool(trust_remote_code)
        self.precision = resolve_precision(precision, "transformer")
        self.pretrained = bool(pretrained)
        self.seed = int(seed)
        self.weights_modified = False
        self._module: Any = None
        self._low_precision: dict[str, LowPrecisionCache] = {}
        self._tokenizer: Any = None
        self._hf_config: Any = None

    # -- lazy loading ------------------------------------------------------------------------

    def _source(self) -> str:
        return self._resolve()

    @property
    def hf_config(self) -> Any:
        """The model's ``PretrainedConfig`` (read without loading weights)."""
        if self._hf_config is None:
            if self._module is not None:
                self._hf_config = self._module.config
            else:
                from textransfer._optional import require

                tf = require("transformers", feature="the transformer encoder")
                self._hf_config = tf.AutoConfig.from_pretrained(
                    self._source(), trust_remote_code=self.trust_remote_code
                )
        return self._hf_config

    @property
    def module(self) -> Any:
        """The ``AutoModel`` (``nn.Module``), loaded on first use, in eval mode."""
        if self._module is None:
            from textransfer._optional import require

            tf = require("transformers", feature="the transformer encoder")
            src = self._source()
            if self.pretrained or self.weights_modified:  # saved weights are trained weights
                model = tf.AutoModel.from_pretrained(src, trust_remote_code=self.trust_remote_code)
            else:
                import torch

                with torch.random.fork_rng(devices=[]):  # leave the caller's random stream alone
                    torch.manual_seed(self.seed)
                    model = tf.AutoModel.from_config(self.hf_config, trust_remote_code=self.trust_remote_code)
            self._module = model.eval()
            self._hf_config = self._module.config
        return self._module

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            from textransfer._optional import require

            tf = require("transformers", feature="the transformer encoder")
            self._tokenizer = tf.AutoTokenizer.from_pretrained(
                self._source(), trust_remote_code=self.trust_remote_code
            )
        return self._tokenizer

    @property
    def dim(self) -> int:
        cfg = self.hf_config
        for key in ("hidden_size", "d_model", "dim", "n_embd"):
            value = getattr(cfg, key, None)
            if isinstance(value, int):
                return value
        raise ValueError(f"cannot read the hidden size from the {cfg.model_type!r} config")

    # -- TrainableEncoder ----------------------------------------------------------------------

    def collate(self, items: list[str]) -> dict[str, Any]:
        """Tokenises ``items`` into a dict of int64 tensors ``(n, t)``, padded to the longest."""
        batch = self.tokenizer(
            list(items),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        return dict(batch)

    def tokenize_all(self, items: list[str]) -> dict[str, list[list[int]]]:
        """Token columns of ``items``, truncated to ``max_length`` and unpadded, for training
        loaders that tokenise once and pad per batch with :meth:`collate_ids`."""
        enc = self.tokenizer(list(items), truncation=True, max_length=self.max_length, padding=False)
        return {k: list(enc[k]) for k in self.tokenizer.model_input_names if k in enc}

    def collate_ids(self, columns: dict[str, list[list[int]]]) -> dict[str, Any]:
        """Rows of :meth:`tokenize_all` padded to the longest: equals ``collate`` of their texts."""
        tok = self.tokenizer
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
        return pad_token_rows(columns, pad_id, left=getattr(tok, "padding_side", "right") == "left")

    def forward(self, batch: dict[str, Any]) -> Any:
        """Pooled features ``(n, dim)`` as a tensor with grad (no ``inference_mode`` here)."""
        import torch.nn.functional as F

        module = self.module
        device = next(module.parameters()).device
        inputs = {k: v.to(device) for k, v in batch.items() if hasattr(v, "to")}
        out = module(**inputs)
        pooled = pool_hidden(out.last_hidden_state, inputs["attention_mask"], self.pooling)
        return F.normalize(pooled, dim=-1) if self.normalize else pooled

    def layer_groups(self) -> list[tuple[str, list[Any]]]:
        """``[("embeddings", ...), ("layer.0", ...), ..., ("pooler", ...)]``, bottom -> top."""
        return transformer_layer_groups(self.module)

    # -- encoding ------------------------------------------------------------------------------

    def truncated(self, items: list[str]) -> tuple[int, int]:
        """``(texts of items longer than max_length tokens, max_length)``: what encoding cut."""
        return count_over_limit(self.tokenizer, items, self.max_length), self.max_length

    def _encode(self, items: list[str], batch_size: int) -> np.ndarray:
        """Tokenises once, runs length-sorted batches under ``inference_mode`` (no autograd
        bookkeeping), pools in place and writes each batch straight into the output rows."""
        import torch
        import torch.nn.functional as F

        module = self.module
        was_training = module.training
        module.eval()
        runner = runner_for(
            self.precision, module, self._low_precision, "transformer",
            features=self._features_graph, example=self._export_example,
        )
        device = next(module.parameters()).device
        out = np.empty((len(items), self.dim), dtype=np.float32)
        batches = length_sorted_batches(self.tokenizer, items, batch_size, self.max_length)
        try:
            with torch.inference_mode():
                for idx, batch in progress(
                    batches, desc=f"encoding ({self.name})", total=-(-len(items) // batch_size), unit="batch"
                ):
                    if self.precision == "int8":  # onnxruntime: pooled, normalised features
                        out[idx] = runner(batch)
                        continue
                    batch = {k: v.to(device) for k, v in batch.items()}
                    # fp32 pooling: a bf16 sum over the tokens would lose digits.
                    hidden = runner(**batch).last_hidden_state.float()
                    pooled = pool_hidden(hidden, batch["attention_mask"], self.pooling)
                    if self.normalize:
                        pooled = F.normalize(pooled, dim=-1)
                    out[idx] = pooled.float().cpu().numpy()
        finally:
            module.train(was_training)
        return out

    def _features_graph(self, module: Any) -> Any:
        """``module`` + this encoder's pooling and normalisation: tokens -> features (int8 export)."""
        from textransfer.encoders.onnx_graph import graph_modules

        return graph_modules()["TransformerFeatures"](module, self.pooling, self.normalize)

    def _export_example(self) -> dict[str, Any]:
        from textransfer.encoders.onnx_graph import CHECK_TEXTS

        return self.collate(list(CHECK_TEXTS))

    # -- identity and persistence ----------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "model": self.model,
            "pooling": self.pooling,
            "max_length": self.max_length,
            "normalize": self.normalize,
            "trust_remote_code": self.trust_remote_code,
            "precision": self.precision,
        }
        if not self.pretrained:  # only then: pretrained encoders keep their fingerprints
            cfg.update(pretrained=False, seed=self.seed)
        return cfg

    def _save_weights(self, directory: Path) -> None:
        self.module.save_pretrained(str(directory))
        self.tokenizer.save_pretrained(str(directory))

    def _check_folder(self, folder: Path, confined: bool) -> None:
        check_hf_folder(folder, self.trust_remote_code, self.max_length if confined else None)
