"""``il6rcc simulate [CONFIG] --out DIR``: the circuit under a config's experiments.

Writes ``DIR/simulation.csv`` (long format: condition_id, cell_line, time_h,
observable_id, value, success) and ``DIR/simulation.png`` (the config's panels).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from .. import _io
from ..configs import load_config, model_from_config, shipped_config, solver_from_config
from ..errors import ConfigError
from ..models import make_batch, simulate
from ._build import use_config_devices


def plot_panels(sim, panels, path: Path) -> Path:
    """One subplot per panel: an observable over time for some experiments."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(len(panels), 1)
    ncol = min(3, n)
    nrow = math.ceil(n / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.6 * ncol, 3.4 * nrow), squeeze=False)
    ids = list(sim.batch.ids)
    for ax, panel in zip(axes.flat, panels, strict=False):
        values = sim.observable(panel.observable)
        for exp_id in panel.experiments:
            y = values[ids.index(exp_id)]
            if panel.relative_to is not None:
                y = y / values[ids.index(panel.relative_to)]
            ax.plot(sim.times, y, marker=".", label=exp_id)
        ax.set_title(panel.title, fontsize=10)
        ax.set_xlabel("time after treatment (h)")
        ax.set_xscale("log")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle(f"{sim.model.name} [{sim.model.variant_name}] at default parameters", fontsize=11)
    fig.tight_layout()
    _io.save_figure(fig, path, dpi=120)
    plt.close(fig)
    return path


def run_simulate(config: str | Path | None, out: Path) -> Path:
    """Run the simulate job; returns the CSV path. Validates before writing anything."""
    loaded = load_config(config if config is not None else shipped_config("simulate.yaml"))
    cfg = loaded.config
    if not cfg.simulate.experiments:
        raise ConfigError(f"{loaded.path}: key simulate.experiments: no experiments to simulate")
    use_config_devices(loaded)
    model = model_from_config(loaded)
    batch = make_batch(model, [e.to_condition() for e in cfg.simulate.experiments])
    start = time.perf_counter()
    sim = simulate(model, None, batch, np.asarray(cfg.simulate.times), solver_from_config(loaded))
    seconds = time.perf_counter() - start
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv = out / "simulation.csv"
    _io.atomic_write(csv, lambda p: sim.to_frame().to_csv(p, index=False))
    plot_panels(sim, cfg.simulate.panels, out / "simulation.png")
    failed = [cid for cid, ok in zip(batch.ids, sim.success, strict=True) if not ok]
    print(
        f"simulated {batch.n_conditions} conditions x {len(sim.times)} times in {seconds:.1f} s "
        f"(compile included); failed solves: {len(failed)}{' ' + str(failed) if failed else ''}"
    )
    print(f"wrote {csv} and {out / 'simulation.png'}")
    return csv


__all__ = ["plot_panels", "run_simulate"]
