"""Masked-language-model training parts for domain-adaptive pretraining (``dapt``, ``udalm``).

The MLM model is built around the encoder's *own* Hugging Face backbone (the very module that
fine-tuning and ``encode`` use), so what MLM training changes is what the classifier gets. Its
head comes from the checkpoint folder when the folder holds one (e.g. ``BertForMaskedLM``
weights: ``cls.predictions.*``); sentence-transformers exports have none, so one is initialised:
the transform (dense + LayerNorm) fresh, the decoder tied to the input word embeddings, the
output bias zero.

Imported lazily by ``strategies/mlm.py`` (this module imports torch at the top).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:  # for annotations only: transformers stays a lazy import
    from transformers import PreTrainedModel

logger = logging.getLogger("textransfer.strategies")

MLM_PREFIX = "mlm_"  # keys of the target MLM batch inside a mixed (UDALM) batch


# -- what the encoder exposes -------------------------------------------------------------------


def backbone_of(encoder: Any) -> Any:
    """The Hugging Face ``PreTrainedModel`` inside a text TrainableEncoder (shared, not copied)."""
    backbone = getattr(encoder, "_backbone", None)  # the sentence encoder: module[0].auto_model
    model = backbone() if callable(backbone) else encoder.module
    if not hasattr(model, "config") or not hasattr(model, "get_input_embeddings"):
        raise TypeError(f"{encoder.name}: {type(model).__name__} is not a Hugging Face transformer")
    return model


def tokenizer_of(encoder: Any) -> Any:
    """The encoder's tokenizer (``transformer``: ``encoder.tokenizer``; ``sentence``: its module's)."""
    tok = getattr(encoder, "tokenizer", None)
    if tok is None:
        tok = getattr(encoder.module, "tokenizer", None)
    if tok is None:
        raise TypeError(f"{encoder.name}: no tokenizer")
    return tok


def max_length_of(encoder: Any) -> int | None:
    """Token limit the encoder truncates to (its ``max_length``, or the sentence model's)."""
    value = getattr(encoder, "max_length", None)
    if value is None:
        value = getattr(encoder.module, "max_seq_length", None)
    return int(value) if value else None


def checkpoint_folder(encoder: Any) -> Path | None:
    """The local folder holding the backbone's weights, or None (hub id, random weights)."""
    if hasattr(encoder, "pretrained") and not encoder.pretrained and not encoder.weights_modified:
        return None  # random weights: a pretrained head would not belong to them
    resolve = getattr(encoder, "_resolve", None)
    if not callable(resolve):
        return None
    try:
        folder = Path(resolve())
    except Exception:  # noqa: BLE001 - an unresolvable name simply has no local head
        return None
    if not folder.is_dir():
        return None
    if not list(folder.glob("*.safetensors")):  # sentence-transformers: the HF model in a subfolder
        for sub in sorted(folder.iterdir()):
            if sub.is_dir() and (sub / "config.json").is_file() and list(sub.glob("*.safetensors")):
                return sub
    return folder


# -- the MLM model ------------------------------------------------------------------------------


class MaskedLM(nn.Module):
    """``forward(labels, **batch) -> {"loss", "logits"}``: an ``AutoModelForMaskedLM``-class model
    whose backbone is the encoder's own module (shared parameters).

    The head runs on the masked positions only (``labels != -100``), not on every token: the
    vocabulary projection is a large share of a small model's step (MiniLM: 384 x 30,522), and
    the loss is the same.

    Attributes:
        model: the ``*ForMaskedLM`` module.
        head_source: ``"checkpoint"`` or ``"initialised"``.
        trace: the loss of every training-mode forward pass, in order (for reports and tests).
    """

    def __init__(self, model: PreTrainedModel, head_source: str) -> None:
        super().__init__()
        self.model = model
        self.head_source = head_source
        self.trace: list[float] = []
        prefix = model.base_model_prefix
        heads = [name for name, _ in model.named_children() if name != prefix]
        self._head = heads[0] if len(heads) == 1 else None  # else: the model's own forward

    def head_parameters(self) -> list[nn.Parameter]:
        """Parameters of the MLM head only (not the backbone's, nor the tied decoder weight)."""
        prefix = self.model.base_model_prefix
        backbone = {id(p) for p in getattr(self.model, prefix).parameters()}
        return [p for p in self.model.parameters() if id(p) not in backbone]

    def forward(self, labels: torch.Tensor | None = None, **batch: Any) -> dict[str, torch.Tensor]:
        device = next(self.model.parameters()).device
        inputs = {k: v.to(device) for k, v in batch.items() if hasattr(v, "to")}
        if labels is None or self._head is None:
            out = self.model(**inputs, labels=None if labels is None else labels.to(device))
            loss, logits = out.loss, out.logits
        else:
            labels = labels.to(device)
            hidden = getattr(self.model, self.model.base_model_prefix)(**inputs)[0]  # (n, t, d)
            masked = labels != -100
            logits = getattr(self.model, self._head)(hidden[masked])  # (m, vocab)
            if logits.shape[0] == 0:  # no token masked in this batch: no loss, not NaN; the empty
                # logits still lead back to the head and the backbone, frozen or not
                loss = logits.sum() * 0.0
            else:
                loss = nn.functional.cross_entropy(logits.float(), labels[masked])
        if self.training and loss is not None:
            self.trace.append(float(loss.detach()))
        return {"loss": loss, "logits": logits}


def build_masked_lm(encoder: Any, seed: int = 0) -> MaskedLM:
    """The MLM model over ``encoder``'s backbone, with the checkpoint's head or a fresh tied one.

    Raises:
        TypeError: the model type has no masked-LM class in transformers (e.g. GPT-2).
    """
    from transformers import MODEL_FOR_MASKED_LM_MAPPING

    backbone = backbone_of(encoder)
    if getattr(tokenizer_of(encoder), "mask_token", None) is None:
        raise TypeError(f"the tokenizer of {encoder.name!r} has no mask token")
    config = backbone.config
    try:
        # The mapping's __getitem__ is annotated with the tokenizer mappings' (slow, fast) pair;
        # the model mappings hold one class.
        cls = cast("type[PreTrainedModel]", MODEL_FOR_MASKED_LM_MAPPING[type(config)])
    except KeyError:
        raise TypeError(f"model type {config.model_type!r} has no masked-language-model head in transformers") from None
    with torch.random.fork_rng(devices=[]):  # the head's init must not move the caller's stream
        torch.manual_seed(seed)
        mlm = cls(config)
    prefix = mlm.base_model_prefix
    setattr(mlm, prefix, backbone)  # share: MLM updates are the encoder's updates
    mlm.train(backbone.training)
    tied = _tie_decoder(mlm, backbone)
    folder = checkpoint_folder(encoder)
    head_names = [n for n in mlm.state_dict() if not n.startswith(prefix + ".")]
    needed = [n for n in head_names if n not in tied]
    found, total = _load_head(mlm, folder, needed) if folder is not None else (0, len(needed))
    if total and found == total:
        logger.info("%s: MLM head loaded from %s (%s)", encoder.name, folder, cls.__name__)
        return MaskedLM(mlm, "checkpoint")
    with torch.random.fork_rng(devices=[]):  # seeded, and the caller's stream stays where it was
        torch.manual_seed(seed)
        _init_head(mlm, backbone)
    where = folder if folder is not None else encoder.name
    logger.warning(
        "%s: %s has no masked-LM head (%d of %d head tensors found): initialised one (%s: transform "
        "dense + LayerNorm fresh, decoder tied to the input word embeddings, bias zero)",
        encoder.name, where, found, total, cls.__name__,
    )
    return MaskedLM(mlm, "initialised")


def _tie_decoder(mlm: PreTrainedModel, backbone: PreTrainedModel) -> set[str]:
    """Ties the output decoder's weight to the input word embeddings; returns the head's names of
    the tied tensor (state-dict names outside the backbone)."""
    out = mlm.get_output_embeddings()
    emb = backbone.get_input_embeddings()
    # isinstance: nn.Module.__getattr__ types an attribute as Tensor | Module.
    if out is None or emb is None or not isinstance(emb.weight, torch.Tensor) or out.weight.shape != emb.weight.shape:
        return set()
    out.weight = emb.weight
    prefix = mlm.base_model_prefix + "."
    ptr = emb.weight.data_ptr()
    return {n for n, t in mlm.state_dict().items() if not n.startswith(prefix) and t.data_ptr() == ptr}


def _load_head(mlm: nn.Module, folder: Path, names: Sequence[str]) -> tuple[int, int]:
    """Copies the head tensors ``names`` found (same name and shape) in ``folder``'s safetensors,
    all or none: half a trained head is not a trained head.

    Names that share one storage (BERT's ``predictions.bias`` and ``decoder.bias``) count once:
    a checkpoint saves only one of them.

    Returns:
        ``(found, needed)``: tensors (distinct storages) found in the folder, and needed.
    """
    from safetensors import safe_open

    state = mlm.state_dict()
    groups: dict[int, list[str]] = {}
    for name in names:
        groups.setdefault(state[name].data_ptr(), []).append(name)
    in_files: dict[str, tuple[Path, str]] = {}
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as f:
            for key in f.keys():
                in_files.setdefault(key, (file, key))
    chosen = {ptr: next((n for n in group if n in in_files), None) for ptr, group in groups.items()}
    found = {ptr: n for ptr, n in chosen.items() if n is not None}
    if len(found) == len(groups):
        tensors = {}
        for name in found.values():
            file, key = in_files[name]
            with safe_open(str(file), framework="pt") as f:
                tensors[name] = f.get_tensor(key)
        if all(tuple(t.shape) == tuple(state[n].shape) for n, t in tensors.items()):
            with torch.no_grad():
                for name, tensor in tensors.items():
                    state[name].copy_(tensor)
            return len(found), len(groups)
        return 0, len(groups)
    return len(found), len(groups)


def _init_head(mlm: PreTrainedModel, backbone: PreTrainedModel) -> None:
    """A fresh head: linear weights N(0, initializer_range) (not the tied decoder, which keeps the
    embeddings), LayerNorm weights 1, every bias zero."""
    std = float(getattr(backbone.config, "initializer_range", 0.02))
    prefix = mlm.base_model_prefix + "."
    emb = backbone.get_input_embeddings().weight
    with torch.no_grad():
        for name, module in mlm.named_modules():
            if (name + ".").startswith(prefix):
                continue
            if isinstance(module, nn.Linear) and module.weight is not emb:
                module.weight.normal_(0.0, std)
            elif isinstance(module, nn.LayerNorm):
                module.weight.fill_(1.0)
        for name, p in mlm.named_parameters():
            if not name.startswith(prefix) and name.endswith("bias"):
                p.zero_()


# -- data ---------------------------------------------------------------------------------------


def tokenize_texts(encoder: Any, texts: Sequence[str]) -> list[dict[str, list[int]]]:
    """Each text tokenised once (truncated to the encoder's limit), with its special-tokens mask."""
    tok = tokenizer_of(encoder)
    enc = tok(list(texts), truncation=True, max_length=max_length_of(encoder), padding=False,
              return_special_tokens_mask=True)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids", "special_tokens_mask") if k in enc]
    return [{k: enc[k][i] for k in keys} for i in range(len(texts))]


def mlm_collator(encoder: Any, probability: float, seed: int) -> Any:
    """BERT masking (``probability`` of tokens; of those 80% [MASK], 10% random, 10% kept)."""
    from transformers import DataCollatorForLanguageModeling

    return DataCollatorForLanguageModeling(
        tokenizer_of(encoder), mlm=True, mlm_probability=probability, mask_replace_prob=0.8,
        random_replace_prob=0.1, seed=seed,
    )


class StepBatches:
    """Exactly ``steps`` batches of row indices, passing through reshuffled copies of the rows."""

    def __init__(self, n: int, batch_size: int, steps: int, seed: int) -> None:
        self.n, self.batch_size, self.steps, self.seed = int(n), int(batch_size), int(steps), int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        pool: list[int] = []
        for _ in range(self.steps):
            while len(pool) < min(self.batch_size, self.n):
                pool.extend(rng.permutation(self.n).tolist())
            batch, pool = pool[: self.batch_size], pool[self.batch_size :]
            yield batch


def mlm_loader(rows: list[dict[str, list[int]]], collator: Any, batch_size: int, steps: int, seed: int) -> Any:
    """A DataLoader of ``steps`` masked batches (``input_ids``, ``attention_mask``, ``labels``)."""
    from torch.utils.data import DataLoader

    batch_size = min(batch_size, len(rows))
    # A list is a map-style dataset (__getitem__ and __len__); torch annotates the argument as Dataset.
    return DataLoader(rows, batch_sampler=StepBatches(len(rows), batch_size, steps, seed), collate_fn=collator)  # type: ignore[arg-type]


class MixedCollator:
    """``collate_fn`` of UDALM: a source batch (encoder's collate + labels) and a masked target
    batch of ``mlm_batch_size`` random target rows under ``mlm_<key>``."""

    def __init__(self, collate: Any, inputs: Sequence[Any], labels: np.ndarray,
                 target_rows: list[dict[str, list[int]]], mlm_collate: Any, mlm_batch_size: int, seed: int) -> None:
        self.collate, self.inputs = collate, list(inputs)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.target_rows, self.mlm_collate = target_rows, mlm_collate
        self.mlm_batch_size = min(int(mlm_batch_size), len(target_rows))
        self.rng = np.random.default_rng(seed)

    def __call__(self, indices: list[int]) -> dict[str, Any]:
        batch = dict(self.collate([self.inputs[i] for i in indices]))
        batch["labels"] = torch.from_numpy(self.labels[indices])
        pick = self.rng.choice(len(self.target_rows), size=self.mlm_batch_size, replace=False)
        for k, v in self.mlm_collate([self.target_rows[i] for i in pick]).items():
            batch[MLM_PREFIX + k] = v
        return batch


class MixedLoss(nn.Module):
    """UDALM's loss ``lambda * L_cls(source) + (1 - lambda) * L_mlm(target)`` in one step.

    Training batches carry the masked target batch under ``mlm_<key>``; validation batches (no
    such keys) give the classification loss and logits only, so model selection reads source
    accuracy. The last step's two losses are kept in ``last``.
    """

    def __init__(self, classifier: nn.Module, mlm: MaskedLM, cls_weight: float) -> None:
        super().__init__()
        self.classifier, self.mlm = classifier, mlm
        self.cls_weight = float(cls_weight)
        self.last: dict[str, float] = {}

    def forward(self, labels: torch.Tensor | None = None, **batch: Any) -> dict[str, torch.Tensor]:
        target = {k[len(MLM_PREFIX):]: v for k, v in batch.items() if k.startswith(MLM_PREFIX)}
        source = {k: v for k, v in batch.items() if not k.startswith(MLM_PREFIX)}
        out = self.classifier(labels=labels, **source)
        if self.training and target:
            mlm_loss = self.mlm(**target)["loss"]
            cls_loss = out["loss"]
            self.last = {"cls_loss": float(cls_loss.detach()), "mlm_loss": float(mlm_loss.detach())}
            out = {**out, "loss": self.cls_weight * cls_loss + (1.0 - self.cls_weight) * mlm_loss}
        return out
