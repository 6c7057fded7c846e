"""The `adu` command line of the library: `adu run`, `adu grid`, `adu methods`, `adu data ...`.

Imports stay inside the handlers so that `adu --help` answers without loading torch. The book's engine
(`adu_book`) and the benchmarks (`python -m benchmarks.bench`) are not part of it: they import the library.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("adu: interrupted; rerun the same command to resume from the last epoch checkpoint", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - known user errors become one clear line; others keep the traceback
        from .backbones import BackboneError
        from .data.base import DataError
        from .train import ConfigError

        if isinstance(err, ConfigError | DataError | BackboneError | KeyError | ValueError):
            msg = err.args[0] if err.args else str(err)
            print(f"adu: error: {msg}", file=sys.stderr)
            return 2
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="adu", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Approximate Domain Unlearning for CLIP (Kawamura et al., NeurIPS 2025): the command line of "
                    "the library, adu_core.",
        epilog="which package for what:\n"
               "  adu_core     the method: backbones, prompted ViT + InstaPG, losses, methods, training, evaluation,\n"
               "               results, data (import it in your own code; this command runs it)\n"
               "  adu_book     the book's engine: which runs a page needs, tables beside the paper, plots\n"
               "  benchmarks/  speed and memory benchmarks: python -m benchmarks.bench --help (in a clone)")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_run(sub)
    _add_grid(sub)
    _add_methods(sub)
    from .data.cli import add_parser as add_data_parser

    add_data_parser(sub)
    return parser


def _add_run(sub) -> None:
    from .config import TIERS, field_docs

    keys = "\n".join(f"  {k:<22} {doc}" for k, doc in field_docs().items()
                     if k not in ("dataset", "forget", "method", "seed", "tier"))
    p = sub.add_parser(
        "run", help="train and evaluate one method on one forget configuration; writes run.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train and evaluate one unlearning run and write DIR/run.json (config, metrics, provenance).\n"
                    "A run whose run.json exists is skipped unless --force; an interrupted run resumes.",
        epilog=f"config keys for --set KEY=VALUE (tuples as a,b,c or JSON; None as none):\n{keys}\n"
               "  method.NAME            a method-specific option (see `adu methods`)\n\n"
               f"tiers: {', '.join(TIERS)} (default: smoke for synthetic, testbed for pacs, paper otherwise)\n\n"
               "example:\n  adu run --dataset office_home --forget clipart --method adu --seed 1 --out runs/oh-clipart")
    p.add_argument("--dataset", required=True, help="dataset name (`adu data list`)")
    p.add_argument("--forget", required=True, help="domain(s) to forget, comma-separated, e.g. clipart,sketch")
    p.add_argument("--method", default="adu", help="method (`adu methods`); default adu")
    p.add_argument("--seed", type=int, default=1, help="seed; default 1")
    p.add_argument("--tier", default=None, help="defaults preset: paper, testbed or smoke")
    p.add_argument("--out", default=None, help="output folder (default: results/<tier>/<dataset>/<method>/...)")
    p.add_argument("--data-root", default=None, help="data root (default $ADU_DATA_ROOT or the user cache)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (repeatable; see below)")
    p.add_argument("--force", action="store_true", help="rerun even if run.json exists")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=_cmd_run)


def config_from_args(args) -> object:
    from .config import make_config

    values = overrides_from_args(args)
    values.update(forget=tuple(d.strip() for d in args.forget.split(",") if d.strip()), method=args.method,
                  seed=args.seed)
    return make_config(args.dataset, args.tier, **values)


def overrides_from_args(args) -> dict:
    """Config values from `--set KEY=VALUE` (method.NAME keys go to method_options) and `--data-root`."""
    from .config import parse_override

    values: dict = {}
    if args.data_root:
        values["data_root"] = args.data_root
    method_options: dict = {}
    for item in args.overrides:
        key, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        key = key.strip()
        if key.startswith("method."):
            method_options[key[len("method."):]] = parse_override(key, text)
        else:
            values[key] = parse_override(key, text)
    if method_options:
        values["method_options"] = {**values.get("method_options", {}), **method_options}
    return values


def _cmd_run(args) -> int:
    from .paths import results_dir
    from .train import resolve_config, run_experiment, run_folder

    cfg = resolve_config(config_from_args(args))
    out = args.out or run_folder(results_dir(cfg.tier), cfg)
    found = (Path(out) / "run.json").is_file() and not args.force
    result = run_experiment(cfg, out, force=args.force, progress=not args.no_progress)
    m = result["metrics"]
    what = f"{cfg.method} on {cfg.dataset}, forget {'+'.join(cfg.forget)}, seed {cfg.seed}"
    scores = f"Mem {m['mem']:.2f}  For {m['for']:.2f}  H {m['h']:.2f}"
    if found:  # nothing was trained: say so, rather than print its metrics as if it had
        print(f"{what}: found {out}/run.json and skipped it (nothing trained; --force retrains). "
              f"Its recorded metrics: {scores}")
    else:
        print(f"{what}: trained. {scores}  -> {out}/run.json")
    return 0


def _add_grid(sub) -> None:
    p = sub.add_parser(
        "grid", help="run a grid (methods x forget sets x seeds), skipping finished runs; optionally on a cluster",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run every (method, forget set, seed) of a grid. Finished runs (run.json present) are skipped, "
                    "interrupted ones resume;\n--backend submitit/ray dispatches the runs as independent jobs "
                    "(pip install 'adu-core[cluster]').\nThe configs are checked before anything starts. A run that "
                    "fails later fails alone: the others finish,\nthen one line per failed run names its folder and "
                    "the cause, and the exit status is 2.",
        epilog="examples:\n"
               "  adu grid --dataset office_home --tier paper --seeds 1,2,3 --backend submitit --executor slurm \\\n"
               "      --partition gpu --timeout-min 720 --logs slurm_logs\n"
               "  ray start --head --num-gpus 1 && adu grid --dataset office_home --tier paper --seeds 1,2,3 "
               "--backend ray --ray-address auto")
    p.add_argument("--dataset", required=True, help="dataset name (`adu data list`)")
    p.add_argument("--methods", default="adu", help="comma-separated methods; default adu")
    p.add_argument("--forget-sizes", default="1,2,3", help="forget every combination of these sizes (default 1,2,3)")
    p.add_argument("--forget", default=None, help="explicit forget sets instead, e.g. 'sketch;photo,cartoon'")
    p.add_argument("--seeds", default="1", help="comma-separated seeds; default 1")
    p.add_argument("--tier", default=None, help="defaults preset: paper, testbed or smoke")
    p.add_argument("--data-root", default=None, help="data root (default $ADU_DATA_ROOT or the user cache)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key for every run (see `adu run --help`)")
    p.add_argument("--results-dir", default=None, help="results root (default: <project>/results)")
    p.add_argument("--backend", default="inline", choices=("inline", "submitit", "ray"),
                   help="inline (this process), submitit (SLURM or local processes) or ray")
    p.add_argument("--executor", default=None, help="submitit executor: slurm, local or debug (default: auto)")
    p.add_argument("--group-size", type=int, default=1, help="compatible runs trained together in one pass")
    p.add_argument("--gpus-per-job", type=float, default=1,
                   help="GPUs each job asks for (submitit/ray; default 1; 0 to train on CPUs)")
    p.add_argument("--partition", default=None, help="submitit on SLURM: the partition the jobs go to")
    p.add_argument("--timeout-min", type=int, default=None,
                   help="submitit: wall-time limit of each job in minutes (default 1440); a run cut off resumes "
                        "from its epoch checkpoint when the grid is submitted again")
    p.add_argument("--param", dest="params", action="append", default=[], metavar="KEY=VALUE",
                   help="submitit: any other executor parameter, e.g. slurm_account=proj, cpus_per_task=4, "
                        "slurm_constraint=a100 (repeatable; values as JSON or text)")
    p.add_argument("--logs", default="dispatch_logs", help="submitit: folder of the jobs' logs (default dispatch_logs)")
    p.add_argument("--ray-address", default=None,
                   help="ray: the cluster to join, e.g. auto (the one `ray start` runs on this machine), "
                        "HEAD_IP:6379, or local (a new instance for this grid); default: $RAY_ADDRESS, else a Ray "
                        "instance running on this machine, else a new one")
    p.add_argument("--force", action="store_true", help="rerun finished runs")
    p.set_defaults(func=_cmd_grid)


def grid_configs(args) -> list:
    from .config import make_config
    from .data import get_dataset

    values = overrides_from_args(args)
    ds = get_dataset(args.dataset, root=args.data_root)
    if args.forget:
        forget_sets = [tuple(ds.check_domains([d for d in part.split(",") if d.strip()]))
                       for part in args.forget.split(";") if part.strip()]
    else:
        from itertools import combinations

        sizes = [int(k) for k in args.forget_sizes.split(",") if k.strip()]
        forget_sets = [c for k in sizes if 0 < k < len(ds.domains) for c in combinations(ds.domains, k)]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    return [make_config(args.dataset, args.tier, **values, method=m, forget=f, seed=s)
            for m in methods for f in forget_sets for s in seeds]


def submitit_parameters(args) -> dict:
    """submitit ``update_parameters`` from `adu grid`'s --partition, --timeout-min and --param KEY=VALUE."""
    import json

    params: dict = {}
    for item in args.params:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--param expects KEY=VALUE, got {item!r}")
        try:
            params[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            params[key.strip()] = text
    if args.partition:
        params["slurm_partition"] = args.partition
    if args.timeout_min is not None:
        params["timeout_min"] = args.timeout_min
    return params


def _cmd_grid(args) -> int:
    from .dispatch import GridFailed, default_run_dirs, dispatch
    from .metrics import aggregate
    from .train import resolve_config

    cfgs = grid_configs(args)
    for cfg in cfgs:  # a typo fails here, before anything is submitted
        resolve_config(cfg)
    dirs = default_run_dirs(cfgs, args.results_dir)
    failed = None
    try:
        results = dispatch(cfgs, dirs, backend=args.backend, executor=args.executor, group_size=args.group_size,
                           gpus_per_job=args.gpus_per_job, force=args.force, folder=args.logs,
                           parameters=submitit_parameters(args),
                           ray_init={"address": args.ray_address} if args.ray_address else None)
    except GridFailed as err:
        failed, results = err, err.results
    by_method: dict[str, list] = {}
    for cfg, run in zip(cfgs, results, strict=True):
        if run is not None:
            by_method.setdefault(cfg.method, []).append(run["metrics"])
    for method, runs in by_method.items():
        agg = aggregate(runs)
        print(f"{method:<10} n={int(agg['n']):<3} H {agg['h']:.2f}  Mem {agg['mem']:.2f}  For {agg['for']:.2f}")
    if failed is not None:
        print(f"adu: error: {failed}", file=sys.stderr)
        return 2
    return 0


def _add_methods(sub) -> None:
    p = sub.add_parser("methods", help="list the registered methods and their options")
    p.set_defaults(func=_cmd_methods)


def _cmd_methods(args) -> int:
    import dataclasses

    from .methods import get_method, list_methods

    for name in list_methods():
        cls = get_method(name)
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        print(f"{name:<10} {doc}")
        for f in dataclasses.fields(cls.options_cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            print(f"    method.{f.name}={default!r}  {f.metadata.get('doc', '')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
