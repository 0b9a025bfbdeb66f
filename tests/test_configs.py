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
