"""Shipped configs load; bad configs fail at load with one clear message and no output."""

from pathlib import Path

import pytest
import yaml

from il6rcc.cli import main
from il6rcc.configs import SHIPPED, load_config
from il6rcc.errors import ConfigError

SHIPPED_CONFIGS = sorted(SHIPPED.glob("*.yaml")) + sorted(SHIPPED.glob("variants/*.yaml"))
TINY = Path(__file__).parent / "fixtures" / "tiny_job" / "tiny.yaml"


def test_the_shipped_set_is_complete():
    names = {p.relative_to(SHIPPED).as_posix() for p in SHIPPED_CONFIGS}
    assert {"base.yaml", "default.yaml", "full.yaml", "simulate.yaml", "petab.yaml"} <= names
    variants = {n.removeprefix("variants/").removesuffix(".yaml") for n in names}
    for v in (
        "main",
        "socs3_stat1",
        "socs3_both",
        "socs3_neither",
        "il6r_membrane",
        "il6r_soluble",
        "tki_akt_direct",
    ):
        assert v in variants


@pytest.mark.parametrize("path", SHIPPED_CONFIGS, ids=lambda p: p.relative_to(SHIPPED).as_posix())
def test_every_shipped_config_loads(path):
    loaded = load_config(path)
    assert loaded.config.inference.nuts.num_samples > 0
    assert len(loaded.sha256) == 64


def test_variant_configs_differ_from_default_only_in_mechanism():
    default = load_config(SHIPPED / "default.yaml").config.model_dump()
    for path in SHIPPED.glob("variants/*.yaml"):
        cfg = load_config(path).config.model_dump()
        diff = {k for k in default if default[k] != cfg[k]}
        assert diff <= {"name", "model"}, (path.name, diff)


def test_overrides_are_applied_and_recorded():
    loaded = load_config(TINY, {"inference.seed": 11, "inference.nuts.num_chains": 3})
    assert loaded.config.inference.seed == 11
    assert loaded.config.inference.nuts.num_chains == 3
    assert loaded.overrides == {"inference.seed": 11, "inference.nuts.num_chains": 3}


def _bad(tmp_path: Path, edit) -> Path:
    """A copy of the tiny fixture config with one defect (data paths made absolute)."""
    data = yaml.safe_load(TINY.read_text())
    data["data"]["tables"] = [str(TINY.parent / t) for t in data["data"]["tables"]]
    edit(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


BAD = {
    "unknown key": (lambda d: d["inference"].update(num_sample=5), "num_sample"),
    "wrong type": (lambda d: d["inference"]["nuts"].update(num_chains="two"), "num_chains"),
    "missing data file": (
        lambda d: d["data"]["tables"].append("no_such_table.tsv"),
        "no_such_table.tsv",
    ),
    "unknown variant": (
        lambda d: d.update(model={"name": "rcc_circuit", "variant": "socs4"}),
        "socs4",
    ),
    "negative sample count": (
        lambda d: d["inference"]["nuts"].update(num_samples=-10),
        "num_samples",
    ),
    "unknown solver": (lambda d: d.update(solver={"solver": "rk45"}), "rk45"),
    "unknown weighting": (lambda d: d.update(likelihood={"weighting": "rows"}), "weighting"),
    "unknown parameter": (lambda d: d["priors"].update(estimate=["a", "kk"]), "kk"),
    # keys that once existed but never did anything are refused, not silently accepted
    "dead key nuts.init": (lambda d: d["inference"]["nuts"].update(init="map"), "nuts.init"),
    "dead key posterior_predictive_draws": (
        lambda d: d["inference"].update(posterior_predictive_draws=100),
        "posterior_predictive_draws",
    ),
    "unknown solver key": (lambda d: d.update(solver={"rtoll": 1e-6}), "solver.rtoll"),
    "bad likelihood value": (
        lambda d: d.update(likelihood={"not_significant_floor": 1.5}),
        "not_significant_floor",
    ),
}


@pytest.mark.parametrize("defect", list(BAD))
def test_bad_config_fails_cleanly(defect, tmp_path, capsys):
    edit, needle = BAD[defect]
    config = _bad(tmp_path, edit)
    out = tmp_path / "run"
    status = main(["fit", str(config), "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("il6rcc: error:"), err
    assert str(config) in err and needle in err, err
    assert "Traceback" not in err
    assert not out.exists()


def test_all_problems_reported_in_one_pass(tmp_path):
    def edit(d):
        d["inference"].update(num_sample=5)
        d["inference"]["nuts"].update(num_samples=-1, num_chains="x")

    with pytest.raises(ConfigError) as err:
        load_config(_bad(tmp_path, edit))
    text = str(err.value)
    assert "num_sample" in text and "num_samples" in text and "num_chains" in text


def test_settings_are_the_libraries_own_objects():
    """The validated sections are what the library takes: no copy of their defaults."""
    from il6rcc.inference import Gates, LikelihoodSettings, MapSettings, NutsSettings
    from il6rcc.models import SolverSettings

    cfg = load_config(TINY).config
    assert isinstance(cfg.solver, SolverSettings) and cfg.solver.rtol == 1e-8
    assert isinstance(cfg.inference.nuts, NutsSettings) and cfg.inference.nuts.num_warmup == 60
    assert isinstance(cfg.inference.map, MapSettings)
    assert isinstance(cfg.likelihood, LikelihoodSettings)
    assert isinstance(cfg.diagnostics, Gates) and cfg.diagnostics.min_ess_bulk == 50


def test_help_shows_the_shipped_budgets(capsys):
    with pytest.raises(SystemExit):
        main(["petab", "fit", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    petab = load_config(SHIPPED / "petab.yaml").config.inference
    assert f"NUTS draws per chain after warmup ({petab.nuts.num_samples})" in text
    assert f"warmup iterations per chain ({petab.nuts.num_warmup})" in text


def test_a_user_config_anywhere_extends_a_shipped_one(tmp_path):
    own = tmp_path / "elsewhere" / "mine.yaml"
    own.parent.mkdir()
    own.write_text("extends: il6rcc:default\nname: mine\ninference: {seed: 3}\n")
    loaded = load_config(own)
    default = load_config(SHIPPED / "default.yaml").config
    assert loaded.config.name == "mine" and loaded.config.inference.seed == 3
    assert loaded.config.priors == default.priors and loaded.config.inference.method == "map"
    assert SHIPPED / "default.yaml" in loaded.files and SHIPPED / "base.yaml" in loaded.files
    variant = tmp_path / "variant.yaml"
    variant.write_text("extends: il6rcc:variants/socs3_both\n")
    assert load_config(variant).config.model.variant == "socs3_both"
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: il6rcc:defualt\n")
    with pytest.raises(
        ConfigError, match="no shipped config 'il6rcc:defualt'; valid: .*il6rcc:default"
    ):
        load_config(bad)
