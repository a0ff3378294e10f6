"""precision: auto | fp32 | bf16 | int8 (textransfer.precision): resolution per machine, the
warning for bf16 without bf16 units, config-load errors, fingerprints, bf16 / int8 encoding,
and what saved encoders record. Capabilities are monkeypatched: no test depends on the CPU."""

from __future__ import annotations

import json
import logging
import warnings

import numpy as np
import pytest

import textransfer.precision as prec
from textransfer.config import ConfigError
from textransfer.encoders.sentence import SentenceEncoder
from textransfer.encoders.transformer import TransformerEncoder
from textransfer.experiments.train.config import load_config
from textransfer.precision import (
    Capabilities,
    SlowPrecisionWarning,
    resolve_mixed_precision,
    resolve_precision,
)

AMX = Capabilities(cpu="test AMX CPU", amx_bf16=True, avx512_bf16=True)
# AVX-512 BF16 without AMX: bf16 slower (as on an Intel Xeon of that kind) or faster (AMD Zen 4).
AVX512_BF16 = Capabilities(cpu="test AVX-512 BF16 CPU", avx512_bf16=True, cpu_bf16_speedup=0.56)
AVX512_BF16_FAST = Capabilities(cpu="test Zen 4 CPU", avx512_bf16=True, cpu_bf16_speedup=2.3)
AVX512_BF16_UNMEASURED = Capabilities(cpu="test AVX-512 BF16 CPU", avx512_bf16=True)
AVX2 = Capabilities(cpu="test AVX2 CPU")
GPU = Capabilities(cpu="test AVX2 CPU", gpu_bf16=True)

TEXTS = ["a good film", "a really terrible phone , not lovely", "plot", "", "the screen is superb ."]


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture
def machine(monkeypatch):
    """Sets the capabilities the encoders see: ``machine(AMX)``."""

    def use(caps: Capabilities) -> None:
        monkeypatch.setattr(prec, "detect_capabilities", lambda: caps)

    return use


@pytest.mark.parametrize(
    ("caps", "device", "expected", "reason"),
    [
        (AMX, "cpu", "bf16", "AMX"),
        (AVX512_BF16, "cpu", "fp32", "measured 0.56x fp32 here (bf16 from 1.3x)"),
        (AVX512_BF16_FAST, "cpu", "bf16", "measured 2.30x fp32 here"),
        (AVX512_BF16_UNMEASURED, "cpu", "fp32", "bf16 was not measured"),
        (AVX2, "cpu", "fp32", "no bf16 units"),
        (GPU, "cuda", "bf16", "GPU supports bf16"),
        (AVX2, "cuda", "fp32", "GPU lacks bf16"),
    ],
)
def test_auto_resolves_from_capabilities_and_logs_why(caps, device, expected, reason, caplog):
    prec._log_once.cache_clear()
    with caplog.at_level(logging.INFO, logger="textransfer.precision"), warnings.catch_warnings():
        warnings.simplefilter("error")  # auto never warns
        assert resolve_precision("auto", "transformer", device=device, caps=caps) == expected
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and f"precision: {expected} (requested auto)" in lines[0] and reason in lines[0]


def test_explicit_precisions_pass_through_and_int8_is_cpu_only():
    for name in ("fp32", "int8"):
        assert resolve_precision(name, caps=AVX2) == name
    assert resolve_precision("bf16", caps=AMX) == "bf16"
    with pytest.raises(ValueError, match="int8' runs on the CPU only"):
        resolve_precision("int8", device="cuda", caps=GPU)


@pytest.mark.parametrize("caps", [AVX512_BF16, AVX2])
def test_bf16_forced_without_amx_works_with_one_warning(caps, machine, tiny_bert_dir):
    machine(caps)
    with pytest.warns(UserWarning, match="bf16.*will be slow") as record:
        enc = TransformerEncoder(str(tiny_bert_dir), precision="bf16")
    assert len(record) == 1 and caps.cpu in str(record[0].message)
    assert enc.config()["precision"] == "bf16"
    assert enc.encode(TEXTS).shape == (len(TEXTS), 32)


def test_int8_on_an_amx_cpu_warns_that_bf16_is_faster(machine):
    machine(AMX)
    with pytest.warns(UserWarning, match=r"int8.*slower here than bf16.*precision: auto") as record:
        assert resolve_precision("int8", "transformer", caps=AMX) == "int8"
    assert len(record) == 1 and AMX.cpu in str(record[0].message)
    for caps in (AVX512_BF16, AVX2):  # int8 is the fastest path measured there: no warning
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert resolve_precision("int8", "transformer", caps=caps) == "int8"


@pytest.mark.parametrize("caps", [AMX, AVX512_BF16_FAST])
def test_bf16_where_it_is_fast_does_not_warn(caps, machine, tiny_bert_dir):
    machine(caps)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert TransformerEncoder(str(tiny_bert_dir), precision="bf16").precision == "bf16"
        assert TransformerEncoder(str(tiny_bert_dir)).precision == "bf16"  # auto


def _cpu(monkeypatch, flags: str, model: str = "test CPU") -> None:
    monkeypatch.setattr(prec, "_cpuinfo", lambda: (model, set(flags.split())))
    monkeypatch.setattr("torch.cpu._is_amx_tile_supported", lambda: "amx_bf16" in flags)
    prec.detect_capabilities.cache_clear()


def test_only_avx512_bf16_cpus_without_amx_are_probed_and_the_result_is_kept(real_capabilities, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    probes: list[int] = []
    monkeypatch.setattr(prec, "_measure_bf16_speedup", lambda: probes.append(1) or 2.25)
    try:
        for flags in ("avx2 fma", "avx512f avx512_bf16 amx_bf16 amx_tile"):
            _cpu(monkeypatch, flags)
            assert prec.detect_capabilities().cpu_bf16_speedup is None
        assert probes == [] and not (tmp_path / "textransfer").exists()

        _cpu(monkeypatch, "avx512f avx512_bf16", model="test Zen 4")
        caps = prec.detect_capabilities()
        assert caps.cpu_bf16_speedup == 2.25 and probes == [1]
        assert "bf16 matmul 2.25x fp32" in caps.describe()
        assert resolve_precision("auto", caps=caps) == "bf16"
        recorded = json.loads((tmp_path / "textransfer" / "precision.json").read_text())
        assert [v for k, v in recorded.items() if k.startswith("test Zen 4 | torch ")] == [2.25]

        # Later processes read the recorded value: same choice, no second measurement.
        prec.detect_capabilities.cache_clear()
        assert prec.detect_capabilities().cpu_bf16_speedup == 2.25 and probes == [1]
        # Another CPU model is measured on its own; the first one's entry stays.
        _cpu(monkeypatch, "avx512f avx512_bf16", model="test Xeon")
        assert prec.detect_capabilities().cpu_bf16_speedup == 2.25 and probes == [1, 1]
        assert len(json.loads((tmp_path / "textransfer" / "precision.json").read_text())) == 2
    finally:
        prec.detect_capabilities.cache_clear()


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"test CPU | torch x": "fast"}'])
def test_a_damaged_probe_file_is_measured_again_and_rewritten(monkeypatch, tmp_path, content):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = tmp_path / "textransfer" / "precision.json"
    path.parent.mkdir()
    path.write_text(content)
    monkeypatch.setattr(prec, "_measure_bf16_speedup", lambda: 0.5)
    assert prec.cpu_bf16_speedup("test CPU") == 0.5
    assert 0.5 in json.loads(path.read_text()).values()


def test_a_multi_process_launch_uses_only_a_recorded_probe(monkeypatch, tmp_path):
    """Ranks probing at once could choose differently; under a launcher only the file counts."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("WORLD_SIZE", "2")
    probes: list[int] = []
    monkeypatch.setattr(prec, "_measure_bf16_speedup", lambda: probes.append(1) or 2.0)
    assert prec.cpu_bf16_speedup("test CPU") is None and probes == []
    assert not (tmp_path / "textransfer").exists()
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert prec.cpu_bf16_speedup("test CPU") == 2.0 and probes == [1]  # a single process records it
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert prec.cpu_bf16_speedup("test CPU") == 2.0 and probes == [1]  # every rank reads the same


def test_an_unwritable_cache_still_gives_a_measurement(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")  # a file where the cache folder would go
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    monkeypatch.setattr(prec, "_measure_bf16_speedup", lambda: 1.8)
    assert prec.cpu_bf16_speedup("test CPU") == 1.8


def test_cpuinfo_names_the_cpu_with_family_and_model(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text(
        "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n"
        "model name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512f avx512_bf16\n\n"
        "processor\t: 1\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC\nflags\t\t: fpu\n"
    )
    assert prec._cpuinfo(str(info)) == ("AMD EPYC (family 25, model 17)", {"fpu", "avx2", "avx512f", "avx512_bf16"})
    info.write_text("model name\t: Some CPU\nflags\t: avx2\n")
    assert prec._cpuinfo(str(info)) == ("Some CPU", {"avx2"})
    assert prec._cpuinfo(str(tmp_path / "missing")) == ("", set())


def test_the_probe_measures_a_ratio():
    # Real measurement, tiny: a positive finite ratio (its size depends on the CPU).
    x = prec._measure_bf16_speedup(rounds=1, reps=1)
    assert 0 < x < float("inf")


def test_mixed_precision_auto_for_training():
    from textransfer.training.args import training_args

    assert resolve_mixed_precision("auto", "cpu", caps=AMX) == "bf16"
    assert resolve_mixed_precision("auto", "cpu", caps=AVX512_BF16) == "no"
    assert resolve_mixed_precision("auto", "cpu", caps=AVX512_BF16_FAST) == "bf16"
    assert resolve_mixed_precision("auto", "cuda", caps=GPU) == "bf16"
    assert resolve_mixed_precision("bf16", "cpu", caps=AVX2) == "bf16"  # explicit: as asked
    assert resolve_mixed_precision(None, "cpu", caps=AMX) is None  # the launcher's setting
    assert training_args({"mixed_precision": "auto"}).mixed_precision == "auto"
    with pytest.raises(ValueError, match="mixed_precision"):
        training_args({"mixed_precision": "bf8"})


def test_mixed_precision_no_written_unquoted_in_yaml(tmp_path):
    """YAML 1.1 reads `mixed_precision: no` as the boolean false: it means "no", from a config
    file and from Python alike; true stays an error."""
    import yaml

    from textransfer.training.args import TrainingArgs, training_args

    settings = yaml.safe_load("mixed_precision: no")
    assert settings == {"mixed_precision": False}
    assert training_args(settings).mixed_precision == "no"
    assert TrainingArgs(mixed_precision=False).mixed_precision == "no"
    with pytest.raises(ValueError, match=r"training\.mixed_precision"):
        training_args({"mixed_precision": True})
    path = tmp_path / "run.yaml"
    path.write_text("name: t\ndata: {train: movies}\ntraining: {mixed_precision: no, epochs: 1}\n")
    assert training_args(load_config(str(path)).training).mixed_precision == "no"


def _write(tmp_path, encoder: dict) -> str:
    import yaml

    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "data": {"train": "movies"}, "encoder": encoder}))
    return str(path)


def test_unknown_precision_is_an_error_at_config_load(tmp_path):
    path = _write(tmp_path, {"name": "transformer", "precision": "fp16"})
    with pytest.raises(ConfigError, match=r"encoder\.precision: precision must be one of auto, fp32, bf16, int8, got 'fp16'") as exc:
        load_config(path)
    assert "run.yaml" in str(exc.value)
    assert load_config(_write(tmp_path, {"name": "sentence", "precision": "int8"})).encoder.params()["precision"] == "int8"


@pytest.mark.parametrize("encoder", ["tfidf", "static"])
def test_int8_on_an_encoder_without_precision_names_those_with_one(tmp_path, encoder):
    path = _write(tmp_path, {"name": encoder, "precision": "int8"})
    with pytest.raises(ConfigError, match=rf"the '{encoder}' encoder cannot run in int8.*transformer and sentence"):
        load_config(path)


@pytest.mark.parametrize("cls", [TransformerEncoder, SentenceEncoder])
def test_fingerprint_differs_between_fp32_and_bf16(cls, machine, tiny_bert_dir, tiny_sentence_dir):
    path = str(tiny_bert_dir if cls is TransformerEncoder else tiny_sentence_dir)
    machine(AMX)
    fp32, bf16, auto_amx = cls(path, precision="fp32"), cls(path, precision="bf16"), cls(path)
    assert fp32.fingerprint() != bf16.fingerprint()
    assert auto_amx.config()["precision"] == "bf16" and auto_amx.fingerprint() == bf16.fingerprint()
    machine(AVX512_BF16)
    # auto resolving to fp32 keeps fp32's fingerprint: earlier cached features stay valid.
    assert cls(path).fingerprint() == fp32.fingerprint()


@pytest.mark.parametrize("caps", [AMX, AVX512_BF16_FAST])
@pytest.mark.parametrize("cls", [TransformerEncoder, SentenceEncoder])
def test_bf16_encode_close_to_fp32(cls, caps, machine, tiny_bert_dir, tiny_sentence_dir):
    import torch

    path = str(tiny_bert_dir if cls is TransformerEncoder else tiny_sentence_dir)
    machine(caps)
    fp32 = cls(path, precision="fp32").encode(TEXTS, batch_size=2)
    enc = cls(path, precision="bf16")
    bf16 = enc.encode(TEXTS, batch_size=2)
    assert bf16.dtype == np.float32 and bf16.shape == fp32.shape
    assert not np.array_equal(bf16, fp32)  # it did run in bf16
    assert _cosine(fp32, bf16).min() > 0.99
    # The bf16 weights are a copy: training keeps the fp32 ones, with their attention.
    assert all(p.dtype == torch.float32 for p in enc.module.parameters())
    models = [m for m in enc._low_precision["bf16"].get(enc.module).modules() if hasattr(m, "set_attn_implementation")]
    # Eager attention in the bf16 copy only on AVX-512 BF16 CPUs without AMX (measured faster there).
    assert models and {m.config._attn_implementation for m in models} == {"eager" if caps is AVX512_BF16_FAST else "sdpa"}
    assert {m.config._attn_implementation for m in enc.module.modules() if hasattr(m, "set_attn_implementation")} == {"sdpa"}


@pytest.mark.parametrize("cls", [TransformerEncoder, SentenceEncoder])
def test_int8_runs_on_a_supported_api_without_deprecation_warnings(cls, tiny_bert_dir, tiny_sentence_dir):
    path = str(tiny_bert_dir if cls is TransformerEncoder else tiny_sentence_dir)
    enc = cls(path, precision="int8")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        feats = enc.encode(TEXTS)
    assert feats.shape[0] == len(TEXTS)
    bad = [w for w in caught if issubclass(w.category, (DeprecationWarning, FutureWarning)) or "quantiz" in str(w.message)]
    assert not bad, [str(w.message) for w in bad]
    # onnxruntime runs the int8 graph: no torch.ao (deprecated eager quantisation) module.
    from textransfer.encoders._fast import OnnxInt8Features

    assert isinstance(enc._low_precision["int8"].get(enc.module), OnnxInt8Features)


@pytest.mark.parametrize("cls", [TransformerEncoder, SentenceEncoder])
def test_resolved_precision_is_recorded_in_the_saved_encoder(cls, machine, tiny_bert_dir, tiny_sentence_dir, tmp_path):
    path = str(tiny_bert_dir if cls is TransformerEncoder else tiny_sentence_dir)
    machine(AVX512_BF16)
    cls(path).save(tmp_path / "here")
    assert json.loads((tmp_path / "here" / "encoder.json").read_text())["precision"] == "fp32"
    machine(AMX)
    cls(path).save(tmp_path / "amx")
    assert json.loads((tmp_path / "amx" / "encoder.json").read_text())["precision"] == "bf16"
    # Loaded elsewhere, a model keeps the precision it was saved with (here: with a warning).
    machine(AVX2)
    with pytest.warns(UserWarning, match="will be slow"):
        assert cls.load(tmp_path / "amx").precision == "bf16"


# -- loading a saved model at another precision -----------------------------------------------


def _saved_model(tmp_path, encoder) -> object:
    from tests.conftest import make_toy
    from textransfer.heads.base import create_head
    from textransfer.strategies.base import create_strategy

    train = make_toy("movies", ["film", "movie", "plot", "actor"], n=32, seed=1)
    clf = create_strategy("frozen").fit(encoder, create_head("logreg", C=10.0), train)
    return clf.save(tmp_path / "model")


def test_a_model_saved_at_bf16_loads_at_the_precision_the_caller_asks_for(machine, tiny_bert_dir, tmp_path):
    import textransfer

    machine(AMX)  # evaluated and saved where bf16 is fast
    model_dir = _saved_model(tmp_path, TransformerEncoder(str(tiny_bert_dir), max_length=32))
    assert json.loads((model_dir / "encoder" / "encoder.json").read_text())["precision"] == "bf16"
    machine(AVX2)  # loaded where it is slow
    with pytest.warns(SlowPrecisionWarning, match=r"saved to run at bf16.*will be slow.*precision='auto'") as rec:
        as_saved = textransfer.load(model_dir)
    assert len(rec) == 1 and as_saved.encoder.precision == "bf16"
    assert rec[0].filename == __file__  # it points at the caller's load, not inside textransfer
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # asking for this machine's best: nothing to warn about
        best = textransfer.load(model_dir, precision="auto")
        fp32 = textransfer.load(model_dir, precision="fp32")
    assert best.encoder.precision == "fp32" and fp32.encoder.precision == "fp32"
    p_best, p_fp32 = best.predict_proba(TEXTS), fp32.predict_proba(TEXTS)
    np.testing.assert_array_equal(p_best, p_fp32)
    # The same weights: bf16 moves the probabilities only a little.
    np.testing.assert_allclose(as_saved.predict_proba(TEXTS), p_fp32, atol=0.05)
    # The folder itself is unchanged: loading again without precision gives bf16.
    with pytest.warns(SlowPrecisionWarning):
        assert textransfer.load(model_dir).encoder.precision == "bf16"


def test_load_precision_errors_name_the_problem(tmp_path):
    import textransfer
    from textransfer.encoders.base import create_encoder

    model_dir = _saved_model(tmp_path, create_encoder("tfidf"))
    with pytest.raises(ValueError, match=r"precision='fp32' applies to transformer and sentence.*'tfidf'") as err:
        textransfer.load(model_dir, precision="fp32")
    assert "cannot be loaded" not in str(err.value)  # the folder is fine: the request is what to fix
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16, int8, got 'fp16'"):
        textransfer.load(model_dir, precision="fp16")
    assert textransfer.load(model_dir).predict(["a good film"]) in (["positive"], ["negative"])


def test_predict_evaluate_and_serve_take_a_precision(machine, tiny_sentence_dir, tmp_path, capsys, monkeypatch):
    import textransfer
    from textransfer.cli import main

    machine(AMX)
    model_dir = _saved_model(tmp_path, SentenceEncoder(str(tiny_sentence_dir)))
    machine(AVX2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["predict", str(model_dir), "--precision", "auto", "--proba", "a good film"]) == 0
        out = capsys.readouterr().out
        fp32 = textransfer.load(model_dir, precision="fp32").predict_proba(["a good film"])[0]
        assert json.dumps({"negative": round(float(fp32[0]), 4), "positive": round(float(fp32[1]), 4)}) in out
        data = tmp_path / "eval.csv"
        data.write_text("text,label\na good film,positive\nan awful plot,negative\n")
        assert main(["evaluate", str(model_dir), "--input", str(data), "--precision", "fp32",
                     "--output-dir", str(tmp_path / "ev")]) == 0
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["encoder_precision"] == "fp32"
    assert "encoder `sentence` at fp32" in (tmp_path / "ev" / "report.md").read_text()
    with pytest.warns(SlowPrecisionWarning):
        assert textransfer.evaluate(model_dir, data).metrics["encoder_precision"] == "bf16"
    clf = textransfer.load(model_dir, precision="fp32")
    with pytest.raises(ValueError, match="for a loaded Classifier"):
        textransfer.evaluate(clf, data, precision="fp32")
    served = []

    def ready(server):  # the served model and what /metadata says of it, then stop at once
        served.append((server.model.encoder.precision, server.metadata["precision"],
                       server.metadata["encoder"]["kwargs"]["precision"]))
        raise KeyboardInterrupt

    from textransfer import serving

    serving.serve(model_dir, port=0, precision="fp32", ready=ready)
    assert served == [("fp32", "fp32", "fp32")]  # the folder says bf16: /metadata says what runs
    calls = []
    monkeypatch.setattr(serving, "serve", lambda *a, **kw: calls.append(kw["precision"]))
    assert main(["serve", str(model_dir), "--precision", "auto"]) == 0 and calls == ["auto"]
