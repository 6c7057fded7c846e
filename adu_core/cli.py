"""The `adu` command line: `adu run`, `adu data ...`, `adu methods`, `adu bench`.

Imports stay inside the handlers so that `adu --help` answers without loading torch.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


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
        prog="adu", description="Approximate Domain Unlearning for CLIP (Kawamura et al., NeurIPS 2025).")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_run(sub)
    _add_methods(sub)
    for module in ("adu_core.data.cli", "adu_core.bench"):
        try:
            mod = __import__(module, fromlist=["add_parser"])
        except ModuleNotFoundError as err:
            if err.name != module:
                raise
            continue
        mod.add_parser(sub)
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
    from .config import make_config, parse_override

    values: dict = {"forget": tuple(d.strip() for d in args.forget.split(",") if d.strip()),
                    "method": args.method, "seed": args.seed}
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
    return make_config(args.dataset, args.tier, **values)


def _cmd_run(args) -> int:
    from .paths import results_dir
    from .results import run_dir
    from .train import resolve_config, run_experiment

    cfg = resolve_config(config_from_args(args))
    out = args.out or run_dir(results_dir(cfg.tier), cfg)
    result = run_experiment(cfg, out, force=args.force, progress=not args.no_progress)
    m = result["metrics"]
    print(f"{cfg.method} on {cfg.dataset}, forget {'+'.join(cfg.forget)}, seed {cfg.seed}: "
          f"Mem {m['mem']:.2f}  For {m['for']:.2f}  H {m['h']:.2f}  -> {out}/run.json")
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
