"""Classifier = encoder + head + label map: predict, predict_proba, save, load.

A saved model is a directory::

    textransfer.json   format version, registry names + kwargs of encoder/head, strategy,
                       labels, metrics, package versions, sha256 of every other file
    encoder/           what the encoder's save() writes (JSON; safetensors / save_pretrained)
    head/              head.json + head.safetensors
    README.md          the model card (textransfer.hub.model_card): documentation, not in the
                       checksum record, so editing it never stops the model from loading

Never pickle. Saves are atomic: a crash mid-save leaves the previous model (or none), never a
half-written directory that loads wrongly. A folder that is not a textransfer model is never
replaced. The folder stands alone: files the encoder found by a local path are copied in, so it
names only its own files, registered resources and hub ids. Loading treats it as data from a
stranger (DESIGN.md section 7): no code runs unless the caller passes ``trust_remote_code``,
paths stay inside, sizes are checked against the weights and the weights against their sha256.

``save(dir, portable=True)`` also copies registered resources (the packaged MiniLM, GloVe) and hub
models into the folder, so it loads where their packages are not installed and nothing can be
downloaded. The folder is a Hugging Face hub repository as it is (``push_to_hub``,
``textransfer.from_pretrained``).
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from textransfer._modelfolder import (
    META_FILE,
    RESAVE_FIX,
    ModelFormatError,
    RemoteCodeError,
    apply_modes,
    check_received_tree,
    file_digests,
    new_tmp_dir,
    read_json_object,
    remove_stale,
    resolve_inside,
    sha256_file,
    side_folder,
    verify_digests,
)
from textransfer._registry import UnknownNameError
from textransfer.data.labeled import Label, LabelMap
from textransfer.encoders.base import CONFIG_FILE as ENCODER_CONFIG
from textransfer.encoders.base import ENCODERS, Encoder, check_batch_size, check_inputs
from textransfer.heads.base import HEADS, Head

# 2: files found by local paths copied in, sha256 record ("files"), no trust_remote_code saved.
# Folders of format 1 still load (without the checksum check).
FORMAT_VERSION = 2
CARD_FILE = "README.md"
_PARTS = ("encoder", "head")
# Written when the model carries its source validation outputs (Classifier.calibration).
_OPTIONAL_PARTS = ("calibration",)
CALIBRATION_FILE = "calibration/source_val.safetensors"
_PACKAGES = ("textransfer", "torch", "transformers", "sentence-transformers", "gensim", "scikit-learn", "numpy")


__all__ = [
    "FORMAT_VERSION",
    "META_FILE",
    "Classifier",
    "ModelFormatError",
    "RemoteCodeError",
    "from_pretrained",
    "load",
    "predict",
]


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in _PACKAGES:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


class Classifier:
    """A trained text (or image) classifier.

    Example:
        >>> clf = textransfer.load("runs/movies_frozen/model")  # doctest: +SKIP
        >>> clf.predict(["great battery life"])  # doctest: +SKIP
        ['positive']
    """

    def __init__(
        self,
        encoder: Encoder,
        head: Head,
        label_map: LabelMap,
        strategy: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        training_data: dict[str, Any] | None = None,
    ) -> None:
        self.encoder = encoder
        self.head = head
        self.label_map = label_map
        self.strategy = strategy or {}
        # {evaluation name: {"domain", "accuracy", "macro_f1", ...}}: the model card's evaluation
        # table; an entry whose domain is not the training domain is reported as cross-domain.
        self.metrics = metrics or {}
        # {"domain", "rows", "labels": {label: count}, "dataset": hub dataset id (optional)}
        self.training_data = training_data or {}
        # The registered resource or hub model the encoder came from, kept across save and load
        # (a portable or fine-tuned encoder's config names "." instead): the card's base_model.
        self.base_model: str | None = None
        # The model's outputs on labeled source rows it was not trained on, saved with it, so that
        # its accuracy on unlabeled data can be estimated later without them (set_calibration).
        self.calibration: dict[str, Any] | None = None

    def set_calibration(self, probabilities: Any, labels: Any, source: str) -> None:
        """Keeps the model's probabilities on labeled source rows it was not trained on, and
        their class ids, to be saved with it: :func:`textransfer.evaluate` and
        :func:`textransfer.estimate_target_accuracy` then estimate its accuracy on unlabeled
        data from them when no ``source_val`` is given.

        Args:
            probabilities: ``(n, k)`` float class probabilities, columns in :attr:`labels` order.
            labels: ``(n,)`` int class ids (positions in :attr:`labels`).
            source: what the rows are, for reports (``"806 rows of movies held out of training"``).

        Raises:
            ValueError: shapes that do not fit the model, ids out of range, non-finite values.
        """
        p = np.asarray(probabilities, dtype=np.float32)
        y = np.asarray(labels)
        k = len(self.label_map)
        if p.ndim != 2 or p.shape[1] != k or y.shape != (len(p),) or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"calibration needs ({len(p)}, {k}) probabilities and ({len(p)},) int labels, "
                             f"got {p.shape} and {y.shape} {y.dtype}")
        if len(y) and (y.min() < 0 or y.max() >= k) or not np.isfinite(p).all():
            raise ValueError(f"calibration labels must be class ids in [0, {k}) and probabilities finite")
        self.calibration = {"probabilities": p, "labels": y.astype(np.int64), "source": str(source)}

    @property
    def labels(self) -> list[Label]:
        """Class labels, in the column order of :meth:`predict_proba`."""
        return list(self.label_map.labels)

    @property
    def encoder_trained(self) -> bool:
        """True when the encoder's weights were trained (fine-tuned, adapted): its features are
        then particular to this model, and the feature cache of frozen features is not used."""
        return bool(self.encoder.weights_modified)

    def predict_proba_features(self, features: np.ndarray) -> np.ndarray:
        """Probabilities ``(n, k)`` float32 from precomputed encoder features ``(n, dim)``."""
        if len(features) == 0:
            return np.zeros((0, len(self.label_map)), dtype=np.float32)
        return self.head.predict_proba(np.asarray(features, dtype=np.float32))

    def predict_proba(self, inputs: Sequence[Any], batch_size: int = 32) -> np.ndarray:
        """Class probabilities, float32 ``(len(inputs), len(labels))``, columns in ``labels`` order."""
        check_batch_size(batch_size)
        items = check_inputs(inputs, self.encoder.modality)
        return self.predict_proba_features(self.encoder.encode(items, batch_size=batch_size))

    def truncated(self, inputs: Sequence[Any]) -> tuple[int, int] | None:
        """``(inputs longer than the encoder's token limit, the limit)``: the texts the model saw
        only the beginning of; None for an encoder without a token limit (TF-IDF, word vectors,
        images)."""
        count = getattr(self.encoder, "truncated", None)
        return count(check_inputs(inputs, self.encoder.modality)) if callable(count) else None

    def predict(self, inputs: Sequence[Any], batch_size: int = 32) -> list[Label]:
        """The most probable label of each input; an empty list gives an empty list."""
        proba = self.predict_proba(inputs, batch_size=batch_size)
        return self.label_map.decode(proba.argmax(axis=1)) if len(proba) else []

    # -- persistence -------------------------------------------------------------------------

    def save(self, directory: str | Path, *, portable: bool = False) -> Path:
        """Writes the model directory atomically, with its model card, and returns its path.

        The folder is written beside ``directory`` as ``.NAME.tmp-<pid>-*`` and renamed into
        place when complete; folders that an earlier, killed save left there are removed.
        Files and folders get the modes the umask gives (e.g. 0644 / 0755). The card
        (``README.md``) is written by every save, so that any model folder says what it is.

        Args:
            directory: the model folder (created; an earlier textransfer model there is replaced).
            portable: also copy the frozen encoder's pretrained files (a registered resource such
                as all-MiniLM-L6-v2 or glove-6b-50d, or a hub model) into the folder, so that it
                loads without their packages and without a network. Fine-tuned weights and
                files found by a local path are always copied in.

        Raises:
            ValueError: ``directory`` exists and is not empty nor a textransfer model, or holds
                files textransfer did not write (an edited model card among them): nothing is
                replaced or deleted then.
        """
        return self._save(directory, portable=portable)

    def save_pretrained(
        self, directory: str | Path, *, portable: bool = False, card_data: Mapping[str, Any] | None = None
    ) -> Path:
        """Hugging Face's name for :meth:`save`: the folder is a hub repository as it is.

        Args:
            directory: the model folder.
            portable: carry the frozen encoder's pretrained files (see :meth:`save`).
            card_data: model-card front matter you know and the model does not, e.g.
                ``{"license": "mit", "language": ["en"], "datasets": ["imdb"], "tags": [...]}``.

        Example:
            >>> clf.save_pretrained("movies-sentiment", portable=True)  # doctest: +SKIP
            >>> textransfer.from_pretrained("movies-sentiment").predict(["great"])  # doctest: +SKIP
            ['positive']
        """
        return self._save(directory, portable=portable, card_data=card_data)

    def push_to_hub(
        self,
        repo_id: str,
        *,
        private: bool | None = None,
        token: str | bool | None = None,
        commit_message: str | None = None,
        portable: bool = True,
        card_data: Mapping[str, Any] | None = None,
    ) -> Any:
        """Uploads the model (with its card) to a Hugging Face hub repo, created if missing.

        Args:
            repo_id: ``name`` or ``user/name`` (``org/name``).
            private: create the repo private (an existing repo keeps its visibility).
            token: a hub token with write access (default: the one ``hf auth login`` stored).
            commit_message: the commit's message.
            portable: carry the frozen encoder's pretrained files (default True: whoever
                downloads the model may have neither the resource packages nor a network).
            card_data: model-card front matter you know (``license``, ``language``, ...).

        Returns:
            huggingface_hub's ``CommitInfo`` of the upload.

        Example:
            >>> clf.push_to_hub("me/movies-sentiment", private=True)  # doctest: +SKIP
        """
        from textransfer.hub import push_to_hub

        return push_to_hub(
            self,
            repo_id,
            private=private,
            token=token,
            commit_message=commit_message,
            portable=portable,
            card_data=card_data,
        )

    def _save(
        self,
        directory: str | Path,
        *,
        portable: bool = False,
        repo_id: str | None = None,
        card_data: Mapping[str, Any] | None = None,
    ) -> Path:
        target = Path(directory)
        if target.is_symlink():  # save where the link points; the link stays
            target = target.resolve()
        _check_save_target(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = new_tmp_dir(target.parent, target.name)
        try:
            self._save_encoder(tmp / "encoder", portable)
            self.head.save(tmp / "head")
            if self.calibration is not None:
                from safetensors.numpy import save_file

                (tmp / CALIBRATION_FILE).parent.mkdir()
                save_file({"probabilities": self.calibration["probabilities"], "labels": self.calibration["labels"]},
                          str(tmp / CALIBRATION_FILE))
            # Hugging Face tools read the label names from config.json; set before the checksums.
            _write_hf_labels(tmp / "encoder", self.label_map.labels)
            meta = {
                "format_version": FORMAT_VERSION,
                # What encoder.json holds: names and folder-relative paths, no trainer paths.
                "encoder": {
                    "name": self.encoder.name,
                    "kwargs": _saved_kwargs(tmp / "encoder"),
                    "resource": self._resource(),
                },
                "head": {"name": self.head.name, "kwargs": self.head.config()},
                "strategy": self.strategy,
                "labels": self.label_map.to_json(),
                "id2label": {str(i): label for i, label in enumerate(self.label_map.labels)},
                "label2id": {str(label): i for i, label in enumerate(self.label_map.labels)},
                "metrics": self.metrics,
                "training_data": self.training_data,
                **({"calibration": {"rows": len(self.calibration["labels"]), "source": self.calibration["source"]}}
                   if self.calibration is not None else {}),
                "versions": _versions(),
                "files": file_digests(tmp),
            }
            meta = json.loads(json.dumps(meta, default=str))  # the card sees what load will read
            from textransfer.hub import model_card

            card = model_card(meta, repo_id=repo_id, name=_card_title(target), card_data=card_data)
            (tmp / CARD_FILE).write_text(card, encoding="utf-8")
            # Not in "files": the card is documentation. Its digest tells a later save whether
            # the user edited it (then it is theirs and is not replaced).
            meta["card_sha256"] = sha256_file(tmp / CARD_FILE)
            # The meta file is written last: a directory without it is never taken for a model.
            (tmp / META_FILE).write_text(json.dumps(meta, indent=2, default=str))
            apply_modes(tmp)
            old = None
            if target.exists():
                old = side_folder(target.parent, target.name, "old")
                os.replace(target, old)
            os.replace(tmp, target)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        remove_stale(target.parent, target.name)
        return Path(directory)

    def _save_encoder(self, folder: Path, portable: bool) -> None:
        """The encoder's save: files found by local paths are always copied in; with
        ``portable`` also registered resources, where the encoder can (transformer, sentence,
        static); other encoders hold everything they need already or name their resource."""
        accepts = "include_resources" in inspect.signature(self.encoder.save).parameters
        if portable and accepts:
            self.encoder.save(folder, portable=True, include_resources=True)  # type: ignore[call-arg]
        else:
            self.encoder.save(folder, portable=True)

    def _resource(self) -> str | None:
        from textransfer.hub import resource_name

        return resource_name(self.encoder.config()) or self.base_model

    @classmethod
    def load(
        cls, directory: str | Path, *, trust_remote_code: bool = False, precision: str | None = None
    ) -> Classifier:
        """Loads a model directory written by :meth:`save` (see :func:`textransfer.load`).

        Args:
            directory: the model folder.
            trust_remote_code: allow Python code shipped in the folder (a Hugging Face model
                with an ``auto_map``) to run. Only the caller grants it, never a saved file.
            precision: run the encoder at this precision (``auto``, ``fp32``, ``bf16``,
                ``int8``) instead of the one it was saved with; None keeps the saved one.
                Transformer and sentence encoders only.

        Raises:
            FileNotFoundError: no such directory.
            ModelFormatError: the folder is incomplete, corrupt, edited (checksums), inconsistent
                (sizes vs weights), unsafe (paths outside it, pickles), or needs code to run
                without ``trust_remote_code`` (:class:`RemoteCodeError`).
            ValueError: an unknown ``precision``, or one given for an encoder without that setting.
        """
        if precision is not None:
            from textransfer.precision import check_precision

            check_precision(precision, "load")
        d = Path(directory)
        meta_path = d / META_FILE
        if not d.is_dir():
            what = f"{d} is a file, not a model directory" if d.is_file() else f"no model directory at {d}"
            raise FileNotFoundError(
                f"{what} (cwd: {Path.cwd()}): pass the `model/` folder written by "
                "`textransfer run`, e.g. runs/<name>/model"
            )
        if not meta_path.exists():
            raise ModelFormatError(
                f"{d} is not a textransfer model: {META_FILE} is missing (the save was interrupted, "
                "or this is another folder); re-run training or point at runs/<name>/model"
            )
        meta = _read_meta(meta_path)
        for part in _PARTS:
            if not (d / part).is_dir():
                raise ModelFormatError(f"{d} is incomplete: the {part}/ folder is missing; re-run training")
        check_received_tree(d)
        if "files" in meta:  # folders saved before checksums were recorded load unchecked
            verify_digests(d, meta["files"], meta_path, (*_PARTS, *_OPTIONAL_PARTS))
        encoder_cls = _registered(ENCODERS, meta["encoder"]["name"], meta_path)
        head_cls = _registered(HEADS, meta["head"]["name"], meta_path)
        if precision is not None and "precision" not in inspect.signature(encoder_cls.load).parameters:
            raise ValueError(
                f"{d}: precision={precision!r} applies to transformer and sentence encoders; this model's "
                f"encoder is {encoder_cls.registry_name!r}, which has no precision setting (leave precision unset)"
            )
        with _names_missing_resource(d):
            encoder = _load_part(
                d / "encoder", lambda: _load_encoder(encoder_cls, d, trust_remote_code, precision)
            )
            head = _load_part(d / "head", lambda: head_cls.load(d / "head"))
            label_map = LabelMap(meta["labels"])
            _load_part(d / "encoder", lambda: _check_fit(d, encoder, head, label_map))
        clf = cls(
            encoder=encoder,
            head=head,
            label_map=label_map,
            strategy=meta.get("strategy") or {},
            metrics=meta.get("metrics") or {},
            training_data=meta.get("training_data") or {},
        )
        resource = meta["encoder"].get("resource")
        clf.base_model = resource if isinstance(resource, str) else None
        if isinstance(meta.get("calibration"), dict):
            _load_part(d / "calibration", lambda: _load_calibration(clf, d, meta_path, meta["calibration"]))
        return clf


def truncated_inputs(model: Any, inputs: Sequence[Any]) -> tuple[int, int] | None:
    """:meth:`Classifier.truncated` of a model that counts its truncated inputs; None for one
    that does not (an ONNX export, a served stand-in with only ``predict_proba``)."""
    count = getattr(model, "truncated", None)
    return count(inputs) if callable(count) else None


def _load_calibration(clf: Classifier, d: Path, meta_path: Path, info: dict[str, Any]) -> None:
    """The saved source validation outputs (a safetensors file: arrays only, no code)."""
    from safetensors.numpy import load_file

    arrays = load_file(str(resolve_inside(d, CALIBRATION_FILE, "calibration", meta_path)))
    clf.set_calibration(arrays["probabilities"], arrays["labels"], str(info.get("source", "")))


def _load_encoder(encoder_cls: Any, d: Path, trust_remote_code: bool, precision: str | None) -> Any:
    """The model's encoder, at ``precision`` when given. A saved precision that is slow on this
    machine (bf16 saved on a CPU with fast bf16 units, loaded on one without) keeps its
    warning, with the way to run at this machine's best instead."""
    from textransfer.precision import SlowPrecisionWarning

    if precision is not None:
        return encoder_cls.load(d / "encoder", trust_remote_code=trust_remote_code, confined=True, precision=precision)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SlowPrecisionWarning)
        encoder = encoder_cls.load(d / "encoder", trust_remote_code=trust_remote_code, confined=True)
    for w in caught:
        if issubclass(w.category, SlowPrecisionWarning):
            saved = getattr(encoder, "precision", "?")
            _warn_at_caller(
                f"{d}: the model was saved to run at {saved}. {w.message}; to do that for this model, load it "
                "with precision='auto' (textransfer.load(..., precision='auto'); CLI: --precision auto)",
                SlowPrecisionWarning,
            )
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
    return encoder


def _warn_at_caller(message: str, category: type[Warning]) -> None:
    """Warns at the first frame outside textransfer (the caller's ``load`` line), however deep
    inside the package the warning arose."""
    import sys

    package = str(Path(__file__).resolve().parent)
    frame = sys._getframe(1)
    while frame.f_back is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(package):
        frame = frame.f_back
    warnings.warn_explicit(message, category, frame.f_code.co_filename, frame.f_lineno,
                           module=frame.f_globals.get("__name__"), registry=frame.f_globals.setdefault("__warningregistry__", {}))


def _saved_kwargs(encoder_dir: Path) -> dict[str, Any]:
    return read_json_object(encoder_dir / ENCODER_CONFIG)


def _write_hf_labels(encoder_dir: Path, labels: Sequence[Label]) -> None:
    """Sets ``id2label`` / ``label2id`` in every Hugging Face ``config.json`` (one with a
    ``model_type``) under ``encoder_dir``, where Hugging Face tools look for label names."""
    from textransfer._modelfolder import walk_files

    for path in walk_files(encoder_dir):
        if path.name != "config.json" or path.is_symlink():
            continue
        config = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(config, dict) or "model_type" not in config:
            continue
        config["id2label"] = {str(i): str(label) for i, label in enumerate(labels)}
        config["label2id"] = {str(label): i for i, label in enumerate(labels)}
        path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


@contextmanager
def _names_missing_resource(folder: Path) -> Iterator[None]:
    """Adds to a missing-resource error that the model names the resource instead of carrying
    its files, and how to get a copy that does."""
    from textransfer.resources import ResourceNotFoundError

    try:
        yield
    except ResourceNotFoundError as exc:
        text = str(exc)
        raise ResourceNotFoundError(
            f"{folder} names a pretrained resource instead of carrying its files, and "
            f"{text[:1].lower()}{text[1:]} (or ask whoever saved the model for a portable copy: "
            "save(dir, portable=True) carries the files)"
        ) from None


def _check_save_target(target: Path) -> None:
    """Refuses to replace anything but an empty folder or a textransfer model (nothing else in it)."""
    if not target.exists():
        return
    if not target.is_dir():
        raise ValueError(
            f"cannot save the model to {target}: it is a file, not a folder; choose another path "
            "or move the file away"
        )
    entries = sorted(os.listdir(target))
    if not entries:
        return
    if not (target / META_FILE).is_file():
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        raise ValueError(
            f"cannot save the model to {target}: the folder exists and is not a textransfer model "
            f"(it holds {shown}), and saving would replace it. Choose a new or empty folder, e.g. "
            f"{target / 'model'}"
        )
    foreign = _foreign_files(target, entries)
    if foreign:
        shown = ", ".join(str(p) for p in foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise ValueError(
            f"cannot replace the model at {target}: the folder also holds {shown}, which "
            "textransfer did not write (or, for the model card README.md, that was edited "
            "since) and would delete; move them out of the folder, or save the model elsewhere"
        )


def _foreign_files(target: Path, entries: list[str]) -> list[Path]:
    """Entries of the model folder ``target`` that its save did not write: any top-level entry
    but the meta file and the parts, and (when the checksum record exists) unrecorded files."""
    from textransfer._modelfolder import walk_files

    try:
        meta = json.loads((target / META_FILE).read_text(encoding="utf-8"))
        record, card = meta.get("files"), meta.get("card_sha256")
    except (ValueError, AttributeError, OSError):  # unreadable meta: the parts count as ours
        record, card = None, None
    # The card is ours while it is as saved; edited, it is the user's and is not replaced.
    ours = (META_FILE, *_PARTS, *_OPTIONAL_PARTS, *((CARD_FILE,) if _card_unchanged(target, card) else ()))
    foreign = [target / e for e in entries if e not in ours]
    if isinstance(record, dict):
        for part in (*_PARTS, *_OPTIONAL_PARTS):
            foreign += [p for p in walk_files(target / part) if p.relative_to(target).as_posix() not in record]
    return foreign


def _card_title(target: Path) -> str:
    """The folder's name, or the run's for ``runs/<name>/model``."""
    path = target.resolve()
    return path.parent.name if path.name == "model" and path.parent.name else path.name


def _card_unchanged(target: Path, digest: Any) -> bool:
    card = target / CARD_FILE
    return isinstance(digest, str) and card.is_file() and not card.is_symlink() and sha256_file(card) == digest


def _read_meta(meta_path: Path) -> dict[str, Any]:
    """The meta file, with the keys and types :meth:`Classifier.load` relies on checked."""
    meta = read_json_object(meta_path)
    fix = f"the file was damaged or not written by textransfer; {RESAVE_FIX}"
    version = meta.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise ModelFormatError(f"{meta_path} has no format_version; re-run training")
    if version > FORMAT_VERSION:
        raise ModelFormatError(
            f"{meta_path.parent} was written by a newer textransfer (model format {version}; this "
            f"version reads up to {FORMAT_VERSION}): upgrade with pip install -U textransfer"
        )
    for part in _PARTS:
        entry = meta.get(part)
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ModelFormatError(f"{meta_path} lacks {part}.name (the registered {part} name); {fix}")
    labels = meta.get("labels")
    if (
        not isinstance(labels, list)
        or not labels
        or not all(isinstance(x, (str, int)) and not isinstance(x, bool) for x in labels)
        or len(set(labels)) != len(labels)
    ):
        raise ModelFormatError(f"{meta_path}: labels must be a list of distinct strings or integers; {fix}")
    for key in ("strategy", "metrics", "training_data", "calibration"):
        if meta.get(key) is not None and not isinstance(meta[key], dict):
            raise ModelFormatError(f"{meta_path}: {key} must be an object; {fix}")
    files = meta.get("files")
    if files is not None and not (
        isinstance(files, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in files.items())
    ):
        raise ModelFormatError(f"{meta_path}: files must map file names to sha256 digests; {fix}")
    return meta


def _registered(registry: Any, name: str, meta_path: Path) -> Any:
    try:
        return registry.get(name)
    except UnknownNameError as exc:
        raise ModelFormatError(
            f"{meta_path} names {exc}. The model needs a component this installation lacks: "
            "upgrade textransfer, or install the package that registers it"
        ) from None


def _load_part(folder: Path, load: Callable[[], Any]) -> Any:
    """Runs ``load``; a dependency's error about the folder's content becomes one ModelFormatError
    naming the folder. Missing packages and resources keep their own messages."""
    from safetensors import SafetensorError

    from textransfer.resources import ResourceNotFoundError

    try:
        return load()
    except (ModelFormatError, ResourceNotFoundError, ImportError):
        raise
    except FileNotFoundError as exc:
        raise ModelFormatError(
            f"{folder.parent} is incomplete: {exc.filename or exc} is missing; re-run training"
        ) from None
    except (ValueError, TypeError, KeyError, IndexError, RuntimeError, OSError, SafetensorError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFormatError(f"{folder} cannot be loaded ({type(exc).__name__}: {first}); {RESAVE_FIX}") from None


def _check_fit(d: Path, encoder: Encoder, head: Head, label_map: LabelMap) -> None:
    """The head must take the encoder's features and score one class per saved label."""
    in_dim, num_classes = head.dims()
    if num_classes is not None and num_classes != len(label_map):
        raise ModelFormatError(
            f"{d / 'head'}: the head scores {num_classes} classes but {d / META_FILE} lists "
            f"{len(label_map)} labels; the head comes from another model; {RESAVE_FIX}"
        )
    if in_dim is not None and in_dim != encoder.dim:
        raise ModelFormatError(
            f"{d / 'head'}: the head takes {in_dim}-d features but the encoder ({encoder.name}) "
            f"gives {encoder.dim}-d; the head comes from another model; {RESAVE_FIX}"
        )


def load(model_dir: str | Path, *, trust_remote_code: bool = False, precision: str | None = None) -> Classifier:
    """Loads a saved model directory.

    Args:
        model_dir: the folder written by :meth:`Classifier.save` (e.g. ``runs/<name>/model``).
        trust_remote_code: let Python code shipped with the model run (only for a model whose
            sender you trust; a saved file can never turn this on).
        precision: run a transformer or sentence encoder at ``auto``, ``fp32``, ``bf16`` or
            ``int8`` instead of the precision it was saved with (None: the saved one). A model
            evaluated at bf16 on a CPU with fast bf16 units keeps bf16 elsewhere, where it can be
            several times slower than fp32: ``precision="auto"`` picks this machine's best.

    Example:
        >>> clf = textransfer.load("runs/movies_to_products/model")  # doctest: +SKIP
        >>> clf.predict_proba(["great battery"]).shape  # doctest: +SKIP
        (1, 2)

    An ONNX export folder (``textransfer export``) loads as an
    :class:`~textransfer.onnx_classifier.OnnxClassifier`: the same ``predict`` / ``predict_proba`` /
    ``labels``, run by onnxruntime.
    """
    from textransfer.onnx_classifier import OnnxClassifier, is_onnx_export

    if is_onnx_export(model_dir):
        if precision is not None:
            raise ValueError(
                f"{model_dir} is an ONNX export, which runs at the precision it was exported with; "
                "precision applies to textransfer model folders (export again with or without --int8)"
            )
        return OnnxClassifier.load(model_dir)  # type: ignore[return-value]
    return Classifier.load(model_dir, trust_remote_code=trust_remote_code, precision=precision)


def from_pretrained(
    name_or_path: str | Path,
    *,
    trust_remote_code: bool = False,
    revision: str | None = None,
    token: str | bool | None = None,
    precision: str | None = None,
) -> Classifier:
    """Loads a model from a local folder or a Hugging Face hub repo id (see
    :func:`textransfer.hub.resolve_pretrained`): the repo is downloaded, then checked and loaded
    like any received folder (``precision``: see :func:`load`).

    Example:
        >>> clf = textransfer.from_pretrained("me/movies-sentiment")  # doctest: +SKIP
        >>> clf.predict(["great battery"])  # doctest: +SKIP
        ['positive']
    """
    from textransfer.hub import resolve_pretrained

    folder = resolve_pretrained(name_or_path, revision=revision, token=token)
    return load(folder, trust_remote_code=trust_remote_code, precision=precision)


def predict(
    model_dir: str | Path,
    inputs: Sequence[Any],
    batch_size: int = 32,
    *,
    trust_remote_code: bool = False,
    precision: str | None = None,
) -> list[Label]:
    """Loads ``model_dir`` and predicts labels for ``inputs`` in one call (``precision``: see
    :func:`load`)."""
    clf = load(model_dir, trust_remote_code=trust_remote_code, precision=precision)
    return clf.predict(inputs, batch_size=batch_size)
