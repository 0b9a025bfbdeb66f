"""The ``il6rcc`` command: one entry point, subcommands.

User errors (bad config, data, PEtab file, names, doses) print one message naming the
file, key or row, the value and what was expected, and exit with status 2 without a
traceback. Status 1 means the job ran but failed (e.g. lint found problems).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

EXIT_USER_ERROR = 2


#: ``{default.KEY}`` / ``{petab.KEY}`` in a help text: the value of KEY in the shipped
#: default.yaml / petab.yaml, filled in when help is shown (so it is never out of date).
_SHIPPED_VALUE = re.compile(r"\{(default|petab)\.([a-z_.]+)\}")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose help shows the shipped configs' budgets."""

    def format_help(self) -> str:
        if any(a.help and _SHIPPED_VALUE.search(a.help) for a in self._actions):
            os.environ.setdefault("EQX_ON_ERROR", "nan")  # the configs import equinox
            from .configs import load_config, shipped_config

            loaded: dict[str, dict] = {}

            def value(match: re.Match) -> str:
                name, key = match.groups()
                if name not in loaded:
                    config = load_config(shipped_config(f"{name}.yaml")).config
                    loaded[name] = config.model_dump(mode="json")
                node = loaded[name]
                for part in key.split("."):
                    node = node[part]
                return str(node)

            for action in self._actions:
                if action.help:
                    action.help = _SHIPPED_VALUE.sub(value, action.help)
        return super().format_help()


def _add_fit_overrides(p: argparse.ArgumentParser, shipped: str) -> None:
    """The overrides of ``fit`` and ``petab fit``; ``shipped``: the config whose values
    the help shows as defaults (``default`` or ``petab``)."""
    g = p.add_argument_group(
        "overrides (recorded in the manifest; defaults: the config's values, shown here "
        f"for the shipped {shipped}.yaml)"
    )
    g.add_argument("--seed", type=int, help=f"random seed ({{{shipped}.inference.seed}})")
    g.add_argument(
        "--method",
        choices=["nuts", "svi", "map"],
        help=f"inference method ({{{shipped}.inference.method}}); map: MAP multi-start "
        f"({{{shipped}.inference.map.n_starts}} starts) and "
        f"{{{shipped}.inference.map.num_draws}} importance-checked Laplace draws",
    )
    g.add_argument(
        "--chains",
        type=int,
        help=f"number of NUTS chains ({{{shipped}.inference.nuts.num_chains}})",
    )
    g.add_argument(
        "--samples",
        type=int,
        help=f"NUTS draws per chain after warmup ({{{shipped}.inference.nuts.num_samples}})",
    )
    g.add_argument(
        "--warmup",
        type=int,
        help=f"NUTS warmup iterations per chain ({{{shipped}.inference.nuts.num_warmup}})",
    )
    g.add_argument(
        "--device", choices=["cpu", "gpu"], help=f"where JAX runs ({{{shipped}.device}})"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="il6rcc",
        description="Bayesian inference on the IL-6/SOCS3/JAK-STAT circuit of renal cell "
        "carcinoma: simulate, fit, diagnose, compare mechanisms, predict interventions.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("simulate", help="simulate the circuit for the experiments of a config")
    p.add_argument("config", nargs="?", help="config YAML (default: the shipped simulate.yaml)")
    p.add_argument("--out", required=True, type=Path, help="output folder")

    p = sub.add_parser("fit", help="fit a config's model to the evidence; writes a run folder")
    p.add_argument("config", nargs="?", help="config YAML")
    p.add_argument("--out", type=Path, help="run folder to create")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue a killed run")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    _add_fit_overrides(p, "default")

    p = sub.add_parser(
        "sweep",
        help="many fits from a sweep file (variants, seeds, config keys, SBC replicates), "
        "or the profiles of a run's parameters (kind: profile), locally or on Slurm; rerun "
        "to continue",
    )
    p.add_argument("sweep", type=Path, help="sweep YAML (see configs/sweeps/)")
    p.add_argument("--out", required=True, type=Path, help="sweep folder (one run folder each)")
    p.add_argument("--executor", choices=["local", "slurm"], help="default: the sweep file's")
    p.add_argument("--jobs", type=int, help="local executor: fits at once (default 1)")
    p.add_argument("--dry-run", action="store_true", help="validate and list the elements")
    p.add_argument("--quiet", action="store_true", help="no progress output")

    p = sub.add_parser(
        "profile",
        help="profile likelihoods and posteriors of parameters of a finished run; names the "
        "practically non-identifiable ones",
        description="Profile likelihood (and profile posterior) of each named parameter: "
        "the other coordinates are re-optimised (BFGS, warm-started from the neighbouring "
        "point) at fixed values stepping outward from the run's MAP until the profile "
        "rises 1.92 (chi2(1, 0.95) / 2) above its minimum or reaches the edge of the "
        "prior's central 99 % interval. Writes profiles.csv, profiles.md (printed) and "
        "figures/profile_<parameter>.png to --out.",
    )
    p.add_argument("run_dir", type=Path, help="run folder of 'il6rcc fit' or 'il6rcc petab fit'")
    p.add_argument(
        "--parameters",
        nargs="+",
        required=True,
        metavar="NAME",
        help="coordinate names as in the run's map.csv (PEtab: parameter ids)",
    )
    p.add_argument("--out", required=True, type=Path, help="output folder (new or empty)")
    p.add_argument(
        "--grid",
        type=int,
        metavar="N",
        help="N equally spaced values across the prior's range instead of the adaptive step",
    )
    p.add_argument("--max-points", type=int, default=30, help="points per side at most (30)")
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="profiles at once, each in its own process (a profile sweep in --out: "
        "--out/parameter=NAME/, sweep.csv; rerun to continue). Default 1: one after the "
        "other in this process, sharing one compilation",
    )
    p.add_argument(
        "--executor",
        choices=["local", "slurm"],
        help="run the profiles as a profile sweep: 'local' (--jobs processes here) or "
        "'slurm' (one array task each, the Slurm defaults of 'il6rcc sweep'; for other "
        "resources write a kind: profile sweep file)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress output")

    p = sub.add_parser("report", help="write a self-contained HTML report of a run")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--out", type=Path, help="report file (default RUN_DIR/report.html)")

    p = sub.add_parser("compare", help="compare fitted mechanism variants by PSIS-LOO")
    p.add_argument("run_dirs", nargs="+", type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument(
        "--refit",
        choices=["auto", "none"],
        default="auto",
        help="rows with high Pareto k: refit them (auto, the default) or only report them",
    )

    p = sub.add_parser("predict", help="posterior predictions of interventions per cell line")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--config", type=Path, help="config whose 'predict' section to use")

    p = sub.add_parser("next-experiment", help="rank candidate experiments by expected information")
    p.add_argument("run_dirs", nargs="+", type=Path, help="fitted runs, one per variant")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--draws", type=int, default=100, help="posterior draws per variant")

    p = sub.add_parser(
        "report-mechanisms",
        help="the mechanism report of a sweep of fitted variants (mechanisms.md, tables, figures)",
    )
    p.add_argument("sweep_dir", type=Path, help="the --out folder of 'il6rcc sweep'")
    p.add_argument("--out", required=True, type=Path, help="report folder (e.g. docs/results)")
    p.add_argument("--draws", type=int, default=50, help="draws per variant for next experiments")

    p = sub.add_parser("data", help="evidence tables")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    q = dsub.add_parser("lint", help="check evidence tables; list every problem")
    q.add_argument("paths", nargs="+")

    p = sub.add_parser("petab", help="PEtab interoperability")
    psub = p.add_subparsers(dest="petab_command", required=True, metavar="ACTION")
    q = psub.add_parser("llh", help="log-likelihood at the nominal parameters")
    q.add_argument("problem", help="PEtab problem YAML")
    q.add_argument("--rtol", type=float, default=1e-8)
    q.add_argument("--atol", type=float, default=1e-8)
    q.add_argument("--max-steps", type=int, default=None, help="solver steps per solve")
    q = psub.add_parser(
        "fit",
        help="fit a PEtab problem: the short form of 'il6rcc fit' with model: {petab: PROBLEM}",
    )
    q.add_argument("problem", help="PEtab problem YAML")
    q.add_argument("--out", required=True, type=Path)
    q.add_argument(
        "--config",
        help="config YAML for the inference, diagnostics and solver sections (default: the "
        "shipped petab.yaml)",
    )
    q.add_argument("--quiet", action="store_true", help="no progress output")
    _add_fit_overrides(q, "petab")
    q = psub.add_parser("export", help="write the RCC problem as PEtab")
    q.add_argument("config", help="config YAML (model variant, evidence)")
    q.add_argument("--out", required=True, type=Path)
    return parser


def _overrides(args: argparse.Namespace) -> dict:
    pairs = {
        "inference.seed": args.seed,
        "inference.nuts.num_chains": args.chains,
        "inference.nuts.num_samples": args.samples,
        "inference.nuts.num_warmup": args.warmup,
        "inference.method": args.method,
        "device": args.device,
    }
    return {k: v for k, v in pairs.items() if v is not None}


def _dispatch(args: argparse.Namespace) -> int:
    from .errors import Il6rccError

    if args.command == "simulate":
        from .jobs.simulate import run_simulate

        run_simulate(args.config, args.out)
        return 0
    if args.command == "fit":
        from .jobs.fit import resume_fit, run_fit

        if args.resume is not None:
            if args.config is not None or args.out is not None:
                raise Il6rccError("--resume RUN_DIR takes no CONFIG or --out")
            return resume_fit(args.resume, quiet=args.quiet)
        if args.config is None or args.out is None:
            raise Il6rccError("il6rcc fit needs CONFIG and --out DIR (or --resume RUN_DIR)")
        return run_fit(args.config, args.out, _overrides(args), quiet=args.quiet)
    if args.command == "sweep":
        from .jobs.sweep import run_sweep

        return run_sweep(
            args.sweep,
            args.out,
            executor=args.executor,
            jobs=args.jobs,
            dry_run=args.dry_run,
            quiet=args.quiet,
        )
    if args.command == "profile":
        from .inference import ProfileSettings
        from .jobs.profile import run_profile

        if args.max_points < 1 or (args.grid is not None and args.grid < 2):
            raise Il6rccError(
                f"profile: --max-points must be >= 1 and --grid >= 2 (received "
                f"--max-points {args.max_points}, --grid {args.grid})"
            )
        if args.jobs < 1:
            raise Il6rccError(f"profile: --jobs: got {args.jobs}; expected a number >= 1")
        settings = ProfileSettings(max_points=args.max_points, grid=args.grid)
        if args.jobs > 1 or args.executor is not None:
            from .jobs.profile import run_profile_sweep

            return run_profile_sweep(
                args.run_dir,
                args.parameters,
                args.out,
                settings,
                executor=args.executor or "local",
                jobs=args.jobs,
                quiet=args.quiet,
            )
        return run_profile(args.run_dir, args.parameters, args.out, settings, quiet=args.quiet)
    if args.command == "report":
        from .jobs.report import write_report

        print(write_report(args.run_dir, args.out))
        return 0
    if args.command == "compare":
        from .jobs.compare import run_compare

        return run_compare(args.run_dirs, args.out, refit=args.refit)
    if args.command == "predict":
        from .jobs.predict import run_predict

        return run_predict(args.run_dir, args.out, args.config)
    if args.command == "next-experiment":
        from .jobs.design import run_next_experiment

        return run_next_experiment(args.run_dirs, args.out, draws=args.draws)
    if args.command == "report-mechanisms":
        from .jobs.mechanisms import write_mechanisms_report

        write_mechanisms_report(args.sweep_dir, args.out, draws=args.draws)
        return 0
    if args.command == "data":
        from .data import lint_main

        return lint_main(args.paths)
    if args.command == "petab":
        from . import petab_io as petab

        if args.petab_command == "llh":
            return petab.llh_main(
                args.problem, rtol=args.rtol, atol=args.atol, max_steps=args.max_steps
            )
        if args.petab_command == "export":
            return petab.export_main(args.config, args.out)
        from .jobs.fit import run_petab_fit

        return run_petab_fit(
            args.problem, args.out, args.config, _overrides(args), quiet=args.quiet
        )
    raise AssertionError(f"unhandled command {args.command}")  # argparse prevents this


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Before JAX or equinox are imported: non-fatal solver errors, chosen device.
    os.environ.setdefault("EQX_ON_ERROR", "nan")
    device = getattr(args, "device", None)
    if device is not None:
        os.environ["JAX_PLATFORMS"] = "cuda" if device == "gpu" else "cpu"
    from . import runtime
    from .errors import Il6rccError

    runtime.setup()
    try:
        return _dispatch(args)
    except Il6rccError as err:
        print(f"il6rcc: error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("il6rcc: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
