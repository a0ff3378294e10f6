"""Trust probes: bad input and hostile model folders against the textransfer CLI and API.

Not part of the test suite (it runs ~100 CLI processes, about 5 minutes on 2 cores); the same
guarantees are unit-tested in tests/test_hostile_models.py, test_bad_inputs.py,
test_run_safety.py and test_cli_errors.py. This harness checks them end to end, as a user or an
attacker would meet them, and can be pointed at an older checkout to compare.

Usage: HF_HUB_OFFLINE=1 .venv/bin/python tests/probes/trust_probes.py [--repo DIR] [--work DIR]
       [--only loss,hostile,silent,resume,errors]
Each probe prints: kind | outcome | detail. Outcome is one of
  ok        clear error (exit 2, one line, no traceback) or correct behaviour
  LOSS      a user's file changed or vanished
  EXEC      code from a model folder ran
  SILENT    exit 0 with a wrong / unannounced result
  TRACE     a traceback or a dependency's raw error reached the user
"""
from __future__ import annotations

# A probe script: compact one-line statements and short loop names read better here.
# ruff: noqa: E702, E741, B007
import argparse
import hashlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ap = argparse.ArgumentParser()
ap.add_argument("--repo", default=str(Path(__file__).resolve().parents[2]), help="checkout to probe")
ap.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "textransfer-probes"))
ap.add_argument("--only", default="")
A = ap.parse_args()
REPO = Path(A.repo)
PY = sys.executable
W = Path(A.work)
shutil.rmtree(W, ignore_errors=True)
W.mkdir(parents=True)
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(REPO),
       "TOKENIZERS_PARALLELISM": "false"}
RESULTS: list[tuple[str, str, str]] = []


def sh(args, cwd=W, timeout=300, env=None):
    p = subprocess.run([PY, "-m", "textransfer.cli", *map(str, args)], cwd=cwd, env=env or ENV,
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def pyrun(code, timeout=300):
    p = subprocess.run([PY, "-c", textwrap.dedent(code)], cwd=W, env=ENV, capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def digest(path):
    p = Path(path)
    if p.is_dir():
        return {str(q.relative_to(p)): hashlib.sha256(q.read_bytes()).hexdigest() for q in sorted(p.rglob("*")) if q.is_file()}
    return hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else None


def record(kind, outcome, detail=""):
    RESULTS.append((kind, outcome, detail))
    print(f"{kind:60s} | {outcome:6s} | {detail[:150]}", flush=True)


def clear_error(kind, rc, err, fragment=None):
    one = err.strip().splitlines()
    if "Traceback" in err:
        return record(kind, "TRACE", one[-1] if one else "")
    if rc == 0:
        return record(kind, "SILENT", "exit 0")
    if rc != 2:
        return record(kind, "TRACE", f"exit {rc}: {one[-1] if one else ''}")
    if fragment and fragment.lower() not in err.lower():
        return record(kind, "ok?", f"message lacks {fragment!r}: {err.strip()[:140]}")
    return record(kind, "ok", err.strip().splitlines()[-1])


def want(only):
    return not A.only or any(o in only for o in A.only.split(","))


# ---------------------------------------------------------------- fixtures
POS = ["good", "great", "wonderful", "excellent", "superb", "lovely"]
NEG = ["bad", "awful", "terrible", "boring", "poor", "dreadful"]
import csv  # noqa: E402
import random  # noqa: E402

rng = random.Random(0)
rows = []
for i in range(120):
    pos = i % 2 == 0
    w = rng.choice(POS if pos else NEG)
    rows.append((f"a {w} {rng.choice(['film','plot','phone','screen'])} number {i} , really {w}", "positive" if pos else "negative"))
with open(W / "train.csv", "w", newline="") as f:
    cw = csv.writer(f)
    cw.writerow(["text", "label"])
    cw.writerows(rows)
CFG = W / "tiny.yaml"
CFG.write_text(f"""name: tiny
seed: 0
output_dir: {W}/runs
cache_dir: {W}/cache
data:
  train: {{source: {W}/train.csv}}
  test_size: 0.25
encoder: {{name: tfidf}}
strategy: {{name: frozen, head: logreg}}
""")
rc, out, err = sh(["run", CFG])
assert rc == 0, err
MODEL = W / "runs/tiny/model"
assert (MODEL / "textransfer.json").exists()


def fresh_model(name):
    d = W / name
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(MODEL, d)
    return d


def write(path, text, mode="w"):
    p = W / path
    p.parent.mkdir(parents=True, exist_ok=True)
    if mode == "wb":
        p.write_bytes(text)
    else:
        p.write_text(text)
    return p


good_in = write("in.csv", "text\nwhat a great film\nawful plot\n")

# ---------------------------------------------------------------- data loss
if want("loss"):
    for suffix in (".csv", ".txt"):
        f = write(f"same{suffix}", "text\ngreat film\nbad plot\n" if suffix == ".csv" else "great film\nbad plot\n")
        before = digest(f)
        rc, out, err = sh(["predict", MODEL, "--input", f, "--output", f])
        if digest(f) != before:
            record(f"loss: predict --input F --output F ({suffix})", "LOSS", f"rc={rc}")
        else:
            clear_error(f"loss: predict --input F --output F ({suffix})", rc, err)
    f = write("same2.csv", "text\ngreat film\n")
    before = digest(f)
    rc, out, err = sh(["predict", MODEL, "--input", "same2.csv", "--output", "./sub/../same2.csv"])
    (W / "sub").mkdir(exist_ok=True)
    rc, out, err = sh(["predict", MODEL, "--input", "same2.csv", "--output", "./sub/../same2.csv"])
    record("loss: same file via another spelling", "LOSS" if digest(f) != before else ("ok" if rc == 2 else "SILENT"), err.strip()[-120:])
    os.symlink(f, W / "link.csv")
    rc, out, err = sh(["predict", MODEL, "--input", "same2.csv", "--output", "link.csv"])
    record("loss: same file via a symlink", "LOSS" if digest(f) != before else ("ok" if rc == 2 else "SILENT"), err.strip()[-120:])
    # failing predict keeps existing output
    out_f = write("keep_out.csv", "my precious results\n")
    before = digest(out_f)
    rc, _, err = sh(["predict", MODEL, "--input", good_in, "--output", out_f, "--text-column", "nope"])
    record("loss: failing predict (missing column) keeps old output", "LOSS" if digest(out_f) != before else "ok", err.strip()[-100:])
    big = W / "late_bad.csv"
    with open(big, "wb") as fh:
        fh.write(b"text\n")
        for i in range(11_000):
            fh.write(f"sentence {i} is fine\n".encode())
        fh.write(b"bad byte \xff here\n")
    rc, _, err = sh(["predict", MODEL, "--input", big, "--output", out_f])
    leftovers = [p.name for p in W.iterdir() if p.name.startswith((".keep_out", "keep_out.csv.")) ]
    record("loss: failing predict (bad byte line 11,002) keeps old output", "LOSS" if digest(out_f) != before else ("ok" if not leftovers else "LOSS"), f"leftovers={leftovers} {err.strip()[-100:]}")
    clear_error("error: bad UTF-8 byte reports its line", rc, err, "11002")
    # input column named label
    lab_in = write("lab_in.csv", "text,label\ngreat film,my gold label\nbad plot,another\n")
    outp = W / "lab_out.csv"
    rc, _, err = sh(["predict", MODEL, "--input", lab_in, "--output", outp])
    if rc == 0:
        import pandas as pd
        df = pd.read_csv(outp)
        ok = "my gold label" in df.astype(str).values
        record("loss: input column 'label' kept", "ok" if ok else "LOSS", str(list(df.columns)))
    else:
        clear_error("loss: input column 'label' kept (error offered)", rc, err, "--prediction-column")
    # save onto a user folder
    thesis = W / "results"
    thesis.mkdir()
    (thesis / "thesis.tex").write_text("years of work")
    rc, out, err = pyrun(f"""
        import textransfer
        clf = textransfer.load({str(MODEL)!r})
        try:
            clf.save({str(thesis)!r})
        except ValueError as e:
            print("refused:", e)
        """)
    record("loss: Classifier.save onto a user's folder", "LOSS" if not (thesis / "thesis.tex").exists() else ("ok" if "refused" in out else "SILENT"), (out + err).strip()[-120:])
    # stale tmp folders
    stale = W / "saved_model"
    rc, out, err = pyrun(f"""
        import textransfer, os
        clf = textransfer.load({str(MODEL)!r})
        clf.save({str(stale)!r})
        os.makedirs({str(W / '.saved_model.tmp-999999-abcd')!r})
        open({str(W / '.saved_model.tmp-999999-abcd/x.bin')!r}, 'wb').write(b'0' * 1000)
        clf.save({str(stale)!r})
        """)
    left = [p.name for p in W.iterdir() if p.name.startswith(".saved_model.")]
    record("loss/clutter: stale .tmp-* from a killed save cleaned by next save", "ok" if not left else "SILENT", str(left))
    # concurrent runs with same name
    slowcfg = write("slow.yaml", CFG.read_text().replace("name: tiny", "name: race"))
    p1 = subprocess.Popen([PY, "-m", "textransfer.cli", "run", str(slowcfg)], cwd=W, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p2 = subprocess.Popen([PY, "-m", "textransfer.cli", "run", str(slowcfg)], cwd=W, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    o1, e1 = p1.communicate(); o2, e2 = p2.communicate()
    codes = sorted([p1.returncode, p2.returncode])
    record("loss: two runs with the same name at once", "ok" if codes in ([0, 2], [0, 0]) and "Traceback" not in e1 + e2 else "TRACE",
           f"codes={codes} {(e1 + e2).strip().splitlines()[-1] if (e1+e2).strip() else ''}")
    # failing validation doesn't overwrite previous config.resolved.yaml
    resolved = W / "runs/tiny/config.resolved.yaml"
    before = digest(resolved)
    rc, _, err = sh(["run", CFG, "--set", "data.train.source=/nonexistent.csv"])
    record("loss: failed run keeps the previous run's config.resolved.yaml", "LOSS" if digest(resolved) != before else "ok", err.strip()[-100:])

# ---------------------------------------------------------------- hostile models
if want("hostile"):
    marker = W / "PWNED"

    def check_no_exec(kind, rc, err, fragment=None):
        if marker.exists():
            marker.unlink()
            return record(kind, "EXEC", err.strip()[-100:])
        clear_error(kind, rc, err, fragment)


    def reseal(model):
        meta_path = model / "textransfer.json"
        try:
            meta = json.loads(meta_path.read_text())
        except Exception:
            return False
        if not isinstance(meta, dict):
            return False
        meta["files"] = {q.relative_to(model).as_posix(): hashlib.sha256(q.read_bytes()).hexdigest()
                         for q in sorted(model.rglob("*")) if q.is_file() and q != meta_path}
        meta_path.write_text(json.dumps(meta))
        return True

    def hp(kind, model, texts=("hello",), checker=None, timeout=300):
        checker = checker or check_no_exec
        t0 = time.time()
        rc, out, err = sh(["predict", model, *texts], timeout=timeout)
        checker(f"{kind} [record kept]", rc, err)
        if reseal(model):
            rc, out, err = sh(["predict", model, *texts], timeout=timeout)
            checker(f"{kind} [record rewritten] ({time.time() - t0:.1f}s)", rc, err)
    # pickled vectors in a static model
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))
    (W / "evil.kv").write_bytes(pickle.dumps(Evil()))
    m = fresh_model("m_static")
    enc = json.loads((m / "encoder/encoder.json").read_text())
    meta = json.loads((m / "textransfer.json").read_text())
    meta["encoder"]["name"] = "static"
    (m / "textransfer.json").write_text(json.dumps(meta))
    (m / "encoder/encoder.json").write_text(json.dumps({"vectors": str(W / "evil.kv"), "pooling": "mean"}))
    hp("hostile: static model vectors -> pickled .kv (absolute)", m)
    shutil.copy(W / "evil.kv", m / "encoder/vectors.kv")
    (m / "encoder/encoder.json").write_text(json.dumps({"vectors": "vectors.kv", "pooling": "mean"}))
    hp("hostile: static model vectors -> pickled .kv inside folder", m)
    (m / "encoder/encoder.json").write_text(json.dumps({"vectors": "../../evil.kv", "pooling": "mean"}))
    hp("hostile: static model vectors -> ../ path", m)
    os.chdir(W)
    (m / "encoder/encoder.json").write_text(json.dumps({"vectors": "evil.kv", "pooling": "mean"}))
    hp("hostile: static model vectors relative to cwd", m)

    # remote code in a transformer model folder
    rc, out, err = pyrun(f"""
        import torch
        from transformers import BertConfig, BertModel, BertTokenizerFast
        d = {str(W / 'tinybert')!r}
        import os; os.makedirs(d, exist_ok=True)
        words = ["[PAD]","[UNK]","[CLS]","[SEP]","[MASK]","great","film","bad","plot","hello","a","number","really","phone","screen"] + [str(i) for i in range(130)] + {POS + NEG!r}
        open(d + "/vocab.txt", "w").write("\\n".join(dict.fromkeys(words)) + "\\n")
        tok = BertTokenizerFast(vocab=d + "/vocab.txt", do_lower_case=True)
        cfg = BertConfig(vocab_size=len(dict.fromkeys(words)), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, max_position_embeddings=64)
        torch.manual_seed(0); BertModel(cfg).save_pretrained(d); tok.save_pretrained(d)
        """)
    assert rc == 0, err
    tcfg = write("tbert.yaml", f"""name: tbert
seed: 0
output_dir: {W}/runs
cache_dir: null
data:
  train: {{source: {W}/train.csv}}
  test_size: 0.25
encoder: {{name: transformer, model: {W}/tinybert, max_length: 32}}
strategy: {{name: frozen, head: logreg}}
""")
    rc, _, err = sh(["run", tcfg])
    assert rc == 0, err
    TM = W / "runs/tbert/model"
    encj = json.loads((TM / "encoder/encoder.json").read_text())
    record("hostile: saved transformer JSON holds no absolute trainer path", "ok" if str(W) not in json.dumps(encj) else "SILENT", json.dumps(encj)[:120])
    m = fresh_model("m_remote")
    shutil.rmtree(m / "encoder"); shutil.copytree(TM / "encoder", m / "encoder")
    meta = json.loads((TM / "textransfer.json").read_text())
    (m / "textransfer.json").write_text(json.dumps(meta))
    shutil.rmtree(m / "head"); shutil.copytree(TM / "head", m / "head")
    # put model files inside the folder + remote code
    hf = m / "encoder/hf"
    shutil.copytree(W / "tinybert", hf)
    (hf / "evil_model.py").write_text(f"import os\nos.system('touch {marker}')\nfrom transformers import BertModel as EvilModel\nfrom transformers import BertConfig as EvilConfig\n")
    c = json.loads((hf / "config.json").read_text())
    c["auto_map"] = {"AutoModel": "evil_model.EvilModel", "AutoConfig": "evil_model.EvilConfig"}
    (hf / "config.json").write_text(json.dumps(c))
    e = json.loads((m / "encoder/encoder.json").read_text())
    e["model"] = "./hf"; e["trust_remote_code"] = True
    (m / "encoder/encoder.json").write_text(json.dumps(e))
    meta2 = json.loads((m / "textransfer.json").read_text()); meta2.pop("files", None); meta2.setdefault("encoder", {}).setdefault("kwargs", {})["trust_remote_code"] = True
    (m / "textransfer.json").write_text(json.dumps(meta2))
    hp("hostile: trust_remote_code + auto_map + .py in folder", m)
    # absolute model path
    e["model"] = str(W / "tinybert"); e.pop("trust_remote_code", None)
    (m / "encoder/encoder.json").write_text(json.dumps(e))
    hp("hostile: transformer model path absolute outside folder", m)
    e["model"] = "../../tinybert"
    (m / "encoder/encoder.json").write_text(json.dumps(e))
    hp("hostile: transformer model path ../ outside folder", m)

    # sizes
    for key, val in (("hidden", 10**9), ("dim", 10**9)):
        mm = W / f"m_mlp_{key}"
        if not mm.exists():
            rc, _, err = sh(["run", CFG, "--set", f"name=mlp_{key}", "--set", "strategy.head=mlp"])
            assert rc == 0, err
            shutil.copytree(W / f"runs/mlp_{key}/model", mm)
        hj = json.loads((mm / "head/head.json").read_text())
        found = [k for k in hj if key in k] or [key]
        for k in found:
            hj[k] = val
        if key == "hidden" and isinstance(hj.get("config"), dict):
            hj.pop("hidden", None); hj["config"]["hidden"] = val; found = ["config.hidden"]
        (mm / "head/head.json").write_text(json.dumps(hj))
        hp(f"hostile: head JSON {found} = 1e9", mm, checker=clear_error, timeout=120)
    m = fresh_model("m_maxlen")
    shutil.rmtree(m); shutil.copytree(TM, m)
    e = json.loads((m / "encoder/encoder.json").read_text()); e["max_length"] = 10**9
    (m / "encoder/encoder.json").write_text(json.dumps(e))
    hp("hostile: encoder max_length = 1e9", m, checker=clear_error, timeout=120)
    # zeroed weights
    m = fresh_model("m_zero")
    for w in list(m.rglob("*.safetensors")):
        w.write_bytes(w.read_bytes()[:8] + bytes(len(w.read_bytes()) - 8))
    hp("hostile: weights overwritten with zeros (same size)", m, texts=("great film", "awful plot"), checker=clear_error)
    m = fresh_model("m_zero2")
    for w in list(m.rglob("head.safetensors")):
        b = bytearray(w.read_bytes())
        hdr = int.from_bytes(b[:8], "little")
        for i in range(8 + hdr, len(b)):
            b[i] = 0
        w.write_bytes(bytes(b))
    rc, out, err = sh(["predict", m, "great film", "awful plot"])
    clear_error("hostile: head tensor data zeroed, header kept [record kept]", rc, err)
    # With the record rewritten too, the folder is a valid model whose weights happen to be zero:
    # no checksum can tell that from a sender's own weights. It must load without error or crash.
    reseal(m)
    rc, out, err = sh(["predict", m, "great film", "awful plot"])
    record("hostile: zeroed head weights, record rewritten (sender's own weights)", "ok" if rc == 0 and "Traceback" not in err else "TRACE", out.strip()[:100])
    m = fresh_model("m_trunc")
    for w in list(m.rglob("*.safetensors"))[:1]:
        w.write_bytes(w.read_bytes()[: len(w.read_bytes()) // 2])
    hp("hostile: truncated safetensors", m, texts=("great film", "awful plot"), checker=clear_error)
    # swapped head: mlp head from tbert (dim 32) into tfidf model
    m = fresh_model("m_swap")
    shutil.rmtree(m / "head"); shutil.copytree(TM / "head", m / "head")
    meta = json.loads((m / "textransfer.json").read_text()); meta.pop("files", None); meta["head"] = json.loads((TM / "textransfer.json").read_text())["head"]
    (m / "textransfer.json").write_text(json.dumps(meta))
    hp("hostile: head from a model with another dim", m, texts=("great film", "awful plot"), checker=clear_error)
    for kind, content in (("list", "[1, 2]"), ("missing keys", '{"format_version": 1}'), ("not json", "{oops"), ("labels wrong type", None)):
        m = fresh_model(f"m_meta_{kind.replace(' ', '_')}")
        if content is None:
            meta = json.loads((m / "textransfer.json").read_text()); meta["labels"] = "positive"; content = json.dumps(meta)
        (m / "textransfer.json").write_text(content)
        hp(f"hostile: textransfer.json {kind}", m, texts=("great film",), checker=clear_error)
    m = fresh_model("m_noenc")
    shutil.rmtree(m / "encoder")
    rc, out, err = sh(["predict", m, "great film"])
    clear_error("hostile: encoder/ folder missing", rc, err)
    rc, out, err = sh(["predict", W, "great film"])
    clear_error("error: predict on a folder that is not a model", rc, err)
    rc, out, err = sh(["predict", W / "nope", "great film"])
    clear_error("error: predict on a missing model folder", rc, err)
    # umask
    rc, out, err = pyrun(f"""
        import os, textransfer, stat
        os.umask(0o022)
        clf = textransfer.load({str(MODEL)!r})
        clf.save({str(W / 'perm_model')!r})
        modes = {{p: oct(stat.S_IMODE(os.stat(os.path.join(r, p)).st_mode)) for r, ds, fs in os.walk({str(W / 'perm_model')!r}) for p in ds + fs}}
        modes['.'] = oct(stat.S_IMODE(os.stat({str(W / 'perm_model')!r}).st_mode))
        print(sorted(set(modes.values())))
        """)
    record("perm: saved model follows umask 022", "ok" if "0o700" not in out and "0o600" not in out else "SILENT", out.strip())

# ---------------------------------------------------------------- silent wrong results
if want("silent"):
    for bs in ("-1", "0"):
        rc, out, err = sh(["predict", MODEL, f"--batch-size={bs}", "great film"])
        clear_error(f"silent: predict --batch-size {bs}", rc, err, "batch")
        rc, out, err = sh(["predict", MODEL, f"--batch-size={bs}", "--input", good_in, "--output", W / "bs_out.csv"])
        clear_error(f"silent: predict --input --batch-size {bs}", rc, err, "batch")
        rc, out, err = sh(["run", CFG, "--set", f"batch_size={bs}", "--set", "name=bs"])
        clear_error(f"silent: config batch_size {bs}", rc, err, "batch")
    rc, out, err = pyrun(f"""
        import textransfer
        clf = textransfer.load({str(MODEL)!r})
        for bad in ({{'great film': 1, 'bad plot': 2}}, {{'great film', 'bad plot'}}, 'great film'):
            try:
                clf.predict(bad); print('ACCEPTED', type(bad).__name__)
            except (TypeError, ValueError) as e:
                print('REJECTED', type(bad).__name__, e)
        try:
            clf.predict(['great film'], batch_size=-1); print('ACCEPTED batch -1')
        except ValueError as e:
            print('REJECTED batch -1')
        """)
    for t in ("dict", "set", "str", "batch -1"):
        record(f"silent: API predict({t})", "ok" if f"REJECTED {t}" in out else "SILENT", [l for l in out.splitlines() if t in l][:1].__str__())
    # feature cache tampering (GloVe-free: tfidf isn't cached? use the cache dir entries)
    entries = sorted((W / "cache").rglob("*.npy"))
    record("info: cache entries after tfidf run", "ok" if entries else "ok?", f"{len(entries)} entries")
    if entries:
        import numpy as np
        for kind in ("contents replaced", "wrong dim", "truncated"):
            for e in sorted((W / "cache").rglob("*.npy")):
                a = np.load(e)
                if kind == "contents replaced":
                    np.save(e, np.zeros_like(a))
                elif kind == "wrong dim":
                    np.save(e, np.zeros((a.shape[0], a.shape[1] + 3), dtype=a.dtype))
                else:
                    e.write_bytes(e.read_bytes()[:-16])
            rc, out, err = sh(["run", CFG, "--set", f"name=cache_{kind.replace(' ', '_')}"])
            m = json.loads((W / f"runs/cache_{kind.replace(' ', '_')}/metrics.json").read_text()) if rc == 0 else None
            acc = m["setups"][list(m["setups"])[0]]["eval"]["test"]["accuracy"] if m else None
            if rc == 0 and acc is not None and acc > 0.9:
                record(f"silent: feature cache {kind}", "ok", f"recomputed, acc={acc:.3f}; {[l for l in err.splitlines() if 'cache' in l.lower()][:1]}")
            elif rc == 0:
                record(f"silent: feature cache {kind}", "SILENT", f"acc={acc}")
            else:
                clear_error(f"silent: feature cache {kind}", rc, err)
    # ragged CSV
    rag = write("ragged.csv", "text\ngreat film,extra\nbad plot\nawful plot\n")
    rc, out, err = sh(["predict", MODEL, "--input", rag, "--output", W / "rag_out.csv"])
    clear_error("silent: predict CSV with a ragged first row", rc, err, "line")
    ragt = write("ragged_train.csv", "text,label\n" + "great film,positive,extra\n" + "".join(f'"{t}",{l}\n' for t, l in rows))
    rc, out, err = sh(["run", CFG, "--set", f"data.train.source={ragt}", "--set", "name=rag"])
    clear_error("silent: training CSV with a ragged first row", rc, err, "line")
    nanl = write("nan_label.csv", "text,label\n" + "".join(f'"{t}",{l}\n' for t, l in rows) + "".join(f"extra {i},NaN\n" for i in range(10)))
    rc, out, err = sh(["run", CFG, "--set", f"data.train.source={nanl}", "--set", "name=nanl"])
    if rc == 0:
        m = json.loads((W / "runs/nanl/metrics.json").read_text())
        labs = m["setups"][list(m["setups"])[0]]["train"]["labels"]
        record("silent: label text NaN", "SILENT" if any(str(k).lower() == "nan" for k in labs) else "ok", str(labs))
    else:
        clear_error("silent: label text NaN", rc, err)
    fl = write("float_label.csv", "text,label\n" + "".join(f'"{t}",{random.uniform(-4, 4):.2f}\n' for t, _ in rows))
    rc, out, err = sh(["run", CFG, "--set", f"data.train.source={fl}", "--set", "name=floatl"])
    clear_error("silent: float score label column", rc, err, "label")
    dup = write("dup.csv", "text,label\n" + "".join(f"text number {i % 20} {'good' if i % 2 else 'bad'},{'pos' if i % 2 else 'neg'}\n" for i in range(200)))
    rc, out, err = sh(["run", CFG, "--set", f"data.train.source={dup}", "--set", "name=dup"])
    record("silent: duplicate texts across the split warned", "ok" if rc == 0 and "duplicate" in err.lower() else "SILENT", [l for l in err.splitlines() if "dup" in l.lower()][:1].__str__())
    rc, out, err = sh(["run", CFG, "--set", "data.test_size=0", "--set", "name=ts0"])
    rep = (W / "runs/ts0/report.md").read_text() if rc == 0 else ""
    record("silent: test_size 0 said in summary", "ok" if rc == 0 and ("test_size" in (err + rep) or "no test" in (err + rep).lower()) else "SILENT", [l for l in (err).splitlines() if "test" in l.lower()][:1].__str__())
    rc, out, err = sh(["run", CFG, "--set", "data.train.limit=100000", "--set", "name=lim"])
    rep = (W / "runs/lim/report.md").read_text() if rc == 0 else ""
    record("silent: limit above data size said", "ok" if rc == 0 and "limit" in (err + rep).lower() else "SILENT", [l for l in err.splitlines() if "limit" in l.lower()][:1].__str__())
    emp = write("empty_cells.csv", 'text\ngreat film\n""\n\nawful plot\n')
    rc, out, err = sh(["predict", MODEL, "--input", emp, "--output", W / "emp_out.csv"])
    record("silent: empty text cells at predict reported", "ok" if rc in (0, 2) and "empty" in (out + err).lower() else "SILENT", (out + err).strip()[-140:])

# ---------------------------------------------------------------- resume
if want("resume"):
    ft = write("ft.yaml", f"""name: ft
seed: 0
output_dir: {W}/runs
cache_dir: null
data:
  train: {{source: {W}/train.csv}}
  test_size: 0.25
encoder: {{name: transformer, model: {W}/tinybert, max_length: 32}}
strategy: {{name: finetune, head: linear}}
training: {{epochs: 60, batch_size: 8, lr: 0.001, patience: null}}
""")
    if not (W / "tinybert").exists():
        record("resume: skipped (run hostile first)", "ok?")
    else:
        p = subprocess.Popen([PY, "-m", "textransfer.cli", "run", str(ft)], cwd=W, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        ck = W / "runs/ft/checkpoints"
        t0 = time.time()
        while time.time() - t0 < 120 and not (ck.exists() and any(ck.glob("epoch-*"))):
            time.sleep(0.2)
        time.sleep(1.0)
        p.send_signal(signal.SIGKILL); p.wait()
        have = sorted(x.name for x in ck.glob("epoch-*")) if ck.exists() else []
        record("info: interrupted fine-tuning left checkpoints", "ok" if have else "ok?", str(have))
        rc, out, err = sh(["run", ft, "--set", "training.epochs=2"])
        kept = sorted(x.name for x in ck.glob("epoch-*")) if ck.exists() else []
        record("loss: rerun without --resume keeps checkpoints", "ok" if kept and rc == 2 else ("LOSS" if not kept else "ok?"), f"rc={rc} {err.strip()[-140:]}")
        flipped = W / "flipped.csv"
        with open(flipped, "w", newline="") as fh:
            cw2 = csv.writer(fh); cw2.writerow(["text", "label"]); cw2.writerows((t, "negative" if l == "positive" else "positive") for t, l in rows)
        rc, out, err = sh(["run", ft, "--resume", "--set", f"data.train.source={flipped}"])
        clear_error("silent: --resume with other data", rc, err, "data")
        rc, out, err = sh(["run", ft, "--resume", "--set", "encoder.max_length=16"])
        clear_error("silent: --resume with other encoder settings", rc, err, "encoder")

# ---------------------------------------------------------------- clear errors
if want("errors"):
    afile = write("afile", "x")
    rc, out, err = sh(["run", CFG, "--set", f"output_dir={afile}", "--set", "name=od"])
    clear_error("error: output_dir is a file", rc, err)
    rc, out, err = sh(["run", CFG, "--set", f"cache_dir={afile}", "--set", "name=cd"])
    clear_error("error: cache_dir is a file", rc, err)
    rc, out, err = sh(["predict", MODEL, "--input", W / "runs", "--output", W / "o.csv"])
    clear_error("error: --input is a folder", rc, err)
    rc, out, err = sh(["predict", MODEL, "--input", good_in, "--output", W / "runs"])
    clear_error("error: --output is a folder", rc, err)
    rc, out, err = sh(["predict", MODEL, "--input", good_in, "--output", W / "afile/o.csv"])
    clear_error("error: --output parent is a file", rc, err)
    rc, out, err = sh(["predict", MODEL, "--input", good_in, "--output", "/proc/version"])
    clear_error("error: --output not writable (/proc/version)", rc, err)
    rc, out, err = sh(["run", CFG, "--set", "training.lr=abc", "--set", "name=lr"])
    clear_error("error: training.lr: abc", rc, err, "lr")
    rc, out, err = sh(["run", CFG, "--set", "training.epochs=-3", "--set", "name=ep"])
    clear_error("error: training.epochs: -3", rc, err, "epochs")
    short = write("short.yaml", CFG.read_text().replace(f"train: {{source: {W}/train.csv}}", f"train: {W}/train.csv"))
    rc, out, err = sh(["run", short, "--set", "data.train.limit=100", "--set", "name=short"])
    record("error: --set data.train.limit on one-word source", "ok" if rc == 0 else "TRACE", err.strip()[-140:])
    for name, content, mode in (("broken.jsonl", '{"text": "ok"}\n{"text": broken\n', "w"),
                                ("empty.csv", "", "w"), ("fake.parquet", "this is text\n", "w"),
                                ("header_only.csv", "text\n", "w"), ("empty.txt", "", "w")):
        f = write(name, content)
        rc, out, err = sh(["predict", MODEL, "--input", f, "--output", W / f"o_{name}.csv"])
        if name in ("header_only.csv", "empty.txt") and rc == 0:
            record(f"error: predict --input {name}", "ok", out.strip()[-100:])
        else:
            clear_error(f"error: predict --input {name}", rc, err, name)
    rc, out, err = sh(["predict", MODEL, "--input", good_in, "--output", W / "x.csv", "--text-column", "nope"])
    clear_error("error: missing text column", rc, err, "nope")
    rc, out, err = sh(["predict", MODEL, "great", "--input", good_in])
    clear_error("error: texts and --input both", rc, err)
    rc, out, err = sh(["predict", MODEL, "--input", good_in])
    clear_error("error: --input without --output", rc, err)
    rc, out, err = sh(["run", W / "nope.yaml"])
    clear_error("error: config file missing", rc, err)
    bad_yaml = write("bad.yaml", "name: x\ndata: [unclosed\n")
    rc, out, err = sh(["run", bad_yaml])
    clear_error("error: YAML syntax error", rc, err)
    rc, out, err = sh(["run", CFG, "--set", "colour=blue"])
    clear_error("error: unknown config key", rc, err, "colour")
    rc, out, err = sh(["run", CFG, "--set", "encoder.name=bogus"])
    clear_error("error: unknown encoder name", rc, err, "bogus")
    rc, out, err = sh(["run", CFG, "--set", "data.train.label_column=stars", "--set", "name=lc"])
    clear_error("error: missing label column in training data", rc, err, "stars")
    rc, out, err = sh(["run", CFG, "--set", "data.test_size=1.5"])
    clear_error("error: test_size 1.5", rc, err, "test_size")
    rc, out, err = sh(["run", CFG, "--set", "name=../escape"])
    clear_error("error: run name with ../", rc, err)
    rc, out, err = sh(["run", CFG, "--set", "strategy.head=bogus"])
    clear_error("error: unknown head", rc, err, "bogus")
    rc, out, err = sh(["run", CFG, "--set", "encoder.nonsense=1"])
    clear_error("error: unknown encoder kwarg", rc, err, "nonsense")
    latin = write("latin1.csv", b"text\ncaf\xe9 ok\n", "wb")
    rc, out, err = sh(["predict", MODEL, "--input", latin, "--output", W / "l_out.csv"])
    clear_error("error: latin-1 input names line", rc, err, "line")
    rc, out, err = sh(["predict", MODEL, "--input", W / "missing.csv", "--output", W / "m_out.csv"])
    clear_error("error: --input missing", rc, err, "missing.csv")
    rc, out, err = sh(["predict", MODEL, "--input", write("in.xlsx", "x"), "--output", W / "x_out.csv"])
    clear_error("error: unsupported input format", rc, err)

bad = [r for r in RESULTS if r[1] not in ("ok",)]
print(f"\n{len(RESULTS)} probes: " + ", ".join(f"{k}={sum(1 for r in RESULTS if r[1] == k)}" for k in sorted({r[1] for r in RESULTS})))
for r in bad:
    print("  NOT OK:", r)
