"""Config loading: defaults, shorthands, dotted overrides, strict keys with clear messages."""

from __future__ import annotations

import re

import pytest
import yaml

from textransfer.config import (
    ConfigError,
    dump_config,
    parse_override,
    validate_config,
)
from textransfer.experiments.train.config import load_config

BASE = {
    "name": "t",
    "data": {"train": "movies", "eval": {"products": "products"}},
    "encoder": "tfidf",
    "strategy": {"name": "frozen", "head": {"name": "logreg", "C": 2.0}},
}


def test_shorthands_and_defaults():
    cfg = load_config(BASE)
    assert cfg.encoder.name == "tfidf" and cfg.encoder.params() == {}
    assert cfg.strategy.head.name == "logreg" and cfg.strategy.head.params() == {"C": 2.0}
    assert cfg.data.train.source == "movies" and cfg.data.eval["products"].source == "products"
    assert cfg.data.test_size == 0.2 and cfg.seed == 0


def test_dotted_overrides_parse_yaml_values():
    cfg = load_config(BASE, ["strategy.head=mlp", "training.lr=3e-4", "training.epochs=2", "encoder.max_features=50"])
    assert cfg.strategy.head.name == "mlp" and cfg.strategy.head.params() == {}
    assert cfg.training == {"lr": 3e-4, "epochs": 2}
    assert cfg.encoder.params() == {"max_features": 50}
    assert parse_override("a.b=[1, 2]") == ("a.b", [1, 2])


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("seeed=1", "unknown key 'seeed' in section 'top level'"),
        ("data.trian=movies", "unknown key 'trian' in section 'data'"),
        ("encoder.max_featurs=5", "unknown key 'max_featurs' in section 'encoder'.*Did you mean 'max_features'"),
        ("strategy.head.hiden=5", r"unknown key 'hiden' in section 'strategy.head'"),
        ("training.learning_rate=1", "unknown key 'learning_rate' in section 'training'"),
        ("encoder.name=bert", "unknown encoder 'bert'.*Known encoders: .*tfidf"),
        ("data.test_size=1.5", "data.test_size: must be a fraction"),
        ("name=../elsewhere", "name: must be a plain folder name"),
    ],
)
def test_bad_keys_are_named_with_their_section(override, expected):
    with pytest.raises(ConfigError, match=expected):
        load_config(BASE, [override])


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    missing = tmp_path / "missing_data.yaml"
    missing.write_text("name: x\n")
    with pytest.raises(ConfigError, match="missing required key 'data'"):
        load_config(missing)


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(BASE, ["strategy.head=mlp"])
    path = tmp_path / "resolved.yaml"
    path.write_text(dump_config(cfg))
    again = load_config(path)
    assert again == cfg
    assert yaml.safe_load(path.read_text())["strategy"]["head"]["name"] == "mlp"


def test_setups_inherit_top_level_sections():
    cfg = load_config({**BASE, "training": {"epochs": 3}, "setups": [
        {"name": "a"}, {"name": "b", "encoder": {"name": "tfidf", "max_features": 10}, "training": {"lr": 0.1}}]})
    a, b = cfg.resolved_setups()
    assert a.encoder.params() == {} and a.training == {"epochs": 3}
    assert b.encoder.params() == {"max_features": 10} and b.training == {"epochs": 3, "lr": 0.1}
    with pytest.raises(ConfigError, match="duplicate setup names"):
        load_config({**BASE, "setups": [{"name": "a"}, {"name": "a"}]})


def test_shipped_configs_name_their_kind_and_validate():
    from pathlib import Path

    from textransfer.experiments import EXPERIMENTS

    paths = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))
    assert paths
    for path in paths:
        kind = yaml.safe_load(path.read_text()).get("kind")
        assert kind in EXPERIMENTS, f"{path.name}: `kind:` {kind!r} is not one of {sorted(EXPERIMENTS)}"
        config = EXPERIMENTS[kind].config_model()
        assert validate_config(config, path).kind == kind


def _crossdomain_raw() -> dict:
    """A small valid cross-domain grid (movies -> products, TF-IDF, frozen + logreg)."""
    return {
        "name": "x",
        "domains": {"a": "movies", "b": "products"},
        "sources": ["a"],
        "targets": ["b"],
        "encoders": {"t": "tfidf"},
        "strategies": {"f": {"name": "frozen", "head": "logreg"}},
    }


def test_crossdomain_configs_share_the_run_config_reader():
    import copy

    from textransfer.experiments.crossdomain.config import load_crossdomain_config

    raw = _crossdomain_raw()
    raw["strategies"] = {"f": {"name": "frozen", "head": "linear", "training": {"epochs": 1}}}
    before = copy.deepcopy(raw)
    cfg = load_crossdomain_config(raw, ["strategies.f.training.lr=3e-4"])
    assert cfg.strategies["f"].training == {"epochs": 1, "lr": 3e-4}  # a float, as in run configs
    assert raw == before  # overrides never write into the caller's dict


@pytest.mark.parametrize("config, override", [
    ("crossdomain_self_train.yaml", "seeds=[0, 1, 0]"),
    ("crossdomain_self_train.yaml", "strategies.frozen.seeds=[0, 0]"),
    ("curve_movies_products.yaml", "seeds=[2, 2]"),
    ("curve_movies_products.yaml", "setups.minilm-finetune.seeds=[0, 0]"),
    ("layers_minilm.yaml", "seeds=[0, 0]"),
])
def test_a_seed_listed_twice_is_refused(config, override):
    """A repeated seed reruns the very same split and training: counted twice, it would shrink the
    std and the CIs of every row without adding a run."""
    from pathlib import Path

    from textransfer.experiments import EXPERIMENTS

    path = Path(__file__).parent.parent / "configs" / config
    model = EXPERIMENTS[yaml.safe_load(path.read_text())["kind"]].config_model()
    with pytest.raises(ConfigError, match=r"seeds: seed\(s\) \[\d\] listed more than once.*Fix: list distinct seeds"):
        validate_config(model, path, [override])
    assert validate_config(model, path).seeds  # the shipped config itself is fine


def test_a_curve_budget_listed_twice_is_refused():
    from pathlib import Path

    from textransfer.experiments import EXPERIMENTS

    path = Path(__file__).parent.parent / "configs" / "curve_movies_products.yaml"
    model = EXPERIMENTS["curve"].config_model()
    with pytest.raises(ConfigError, match=r"budgets: budgets \[8\] listed more than once.*list each budget once"):
        validate_config(model, path, ["budgets=[0, 8, 8, 32, all]"])
    with pytest.raises(ConfigError, match=r"budgets \['all'\] listed more than once"):
        validate_config(model, path, ["budgets=[8, all, all]"])


@pytest.mark.parametrize("key", ["sources", "targets"])
def test_a_crossdomain_domain_listed_twice_is_refused(key):
    from textransfer.experiments.crossdomain.config import load_crossdomain_config

    raw = _crossdomain_raw()
    raw[key] = raw[key] * 2
    with pytest.raises(ConfigError, match=rf"{key}: \['[ab]'\] listed more than once.*list each domain once"):
        load_crossdomain_config(raw, [])


@pytest.mark.parametrize("config, override, where", [
    ("crossdomain_self_train.yaml", "seeds=[0, -1]", "seeds.1"),
    ("crossdomain_self_train.yaml", "split_seed=-2", "split_seed"),
    ("curve_movies_products.yaml", "seeds=[-1]", "seeds.0"),
    ("movies_frozen.yaml", "seed=-3", "seed"),
    ("movies_frozen.yaml", "seed=4294967296", "seed"),
    ("movies_frozen.yaml", "data.train.sample_seed=-1", "data.train.sample_seed"),
    ("movies_frozen.yaml", "training.seed=-1", "training.seed"),
])
def test_a_seed_outside_what_numpy_takes_is_refused_at_config_load(config, override, where):
    """A negative seed passed validation and failed deep inside numpy, with a message that blamed
    the data ("domain 'movies' is too small ... expected non-negative integer")."""
    from pathlib import Path

    from textransfer.experiments import EXPERIMENTS

    path = Path(__file__).parent.parent / "configs" / config
    model = EXPERIMENTS[yaml.safe_load(path.read_text())["kind"]].config_model()
    with pytest.raises(ConfigError, match=rf"{re.escape(where)}:? .*whole number from 0 to 4294967295"):
        validate_config(model, path, [override])


def test_the_default_feature_cache_follows_xdg_cache_home(monkeypatch, tmp_path):
    from textransfer.experiments.crossdomain.config import load_crossdomain_config
    from textransfer.experiments.curve.config import load_curve_config

    def defaults() -> set[str | None]:
        return {
            load_config(BASE).cache_dir,
            load_crossdomain_config("configs/crossdomain_toy.yaml").cache_dir,
            load_curve_config("configs/curve_movies_products.yaml").cache_dir,
        }

    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert defaults() == {"~/.cache/textransfer/features"}
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # beside resources, hub views, the probe
    assert defaults() == {str(tmp_path / "xdg" / "textransfer" / "features")}
    assert load_config({**BASE, "cache_dir": "~/my-cache"}).cache_dir == "~/my-cache"  # a set one is kept
