"""One page of the book, as its notebook runs: its parameters resolved once, and the steps every page shares.

A page's cells stay short::

    pg = adu_book.page("main_results", dataset, tier, seeds=seeds, ...)   # the papermill parameters
    pg.show_session()                                                   # code, device, weights, data
    status = pg.run(pg.plan(plans.method_variants(["baseline", "adu"]), pg.forget("all", "1,2,3")))
    tables.summary_table(status.runs, pg.method_rows(1), keys=["n_forget", "variant"])

:meth:`Page.run` trains only the missing runs the page's budget allows, then shows what exists and what is missing
(with the command that completes it), where the runs it trained went, and the provenance of the runs shown.

Parameters every page takes without its call naming them (:data:`NOTEBOOK`): ``shots``, ``max_test_per_domain`` and
``preset`` are read from the notebook's own parameters when :func:`page` is not given them, so a page gains them by
a line in its parameters cell alone. ``preset="smoke"`` (:data:`PRESETS`) is a cheap first try of a tier (the paper
tier on one GPU in minutes): one shot, one epoch, 50 test images per domain, seed 1, one new run; its runs differ from
the tier's in their config, so they live in run folders of their own and never mix with full runs.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from adu_core.backbones import RANDOM
from adu_core.config import TIERS, RunConfig, make_config
from adu_core.data import get_dataset
from adu_core.methods import list_methods
from adu_core.paths import results_dir

from .names import DATASET_NAMES, dataset_name
from .paper import (
    analogous_domain,
    figure_forget_sets,
    load_paper_numbers,
    method_rows,
    paper_for_variants,
    paper_label,
    paper_reference,
)
from .plans import PlannedRun, Variant, parse_forget_sets, parse_ints, parse_list, plan_runs, resolve_seeds
from .provenance import provenance_banner, session_banner, wrap
from .runs import RunStatus, ensure_runs, resolve_budget, short_path

__all__ = ["NOTEBOOK", "PRESETS", "Page", "notebook_parameter", "on_colab", "page", "unavailable_note"]

# Page presets (the `preset` parameter): values for the parameters left at None. "smoke" tries a tier cheaply first:
# the paper tier's backbone, weights and data, on a schedule that takes minutes on one GPU (and shows the plumbing
# works end to end: data, weights, training, evaluation, the paper's numbers beside ours).
PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {"shots": 1, "epochs": 1, "max_test_per_domain": 50, "seeds": 1, "max_new_runs": 1},
}
PRESET_NOTES = {"smoke": "a cheap first try of the set-up (1 shot, 1 epoch, 50 test images per domain, seed 1): its "
                         "numbers check the pipeline, they do not reproduce the paper"}
COLAB_DRIVE = "/content/drive"


class _FromNotebook:
    """The default of :func:`page`'s optional parameters: the notebook's parameter of that name, if it has one."""

    def __repr__(self) -> str:
        return "<the notebook's parameter>"


NOTEBOOK: Any = _FromNotebook()


def notebook_parameter(name: str) -> Any:
    """The value of ``name`` in the running notebook's namespace (where papermill injects parameters); None outside a
    notebook or when the notebook has no such parameter."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return None if shell is None else shell.user_ns.get(name)


def on_colab() -> bool:
    """Whether this kernel runs on Google Colab (whose VM, and every file on it, is gone when the session ends)."""
    return "google.colab" in sys.modules or bool(os.environ.get("COLAB_RELEASE_TAG"))


def unavailable_note(methods: Sequence[str], consequence: str = "") -> list[str]:
    """The note for requested methods that this version of ``adu_core`` does not have (no note when none)."""
    if not methods:
        return []
    note = f"Not implemented in this version of `adu_core`: {', '.join(methods)}."
    return [f"{note} {consequence}" if consequence else note]


def _show(markdown: str) -> None:
    from IPython.display import Markdown, display

    display(Markdown(markdown))


@dataclass
class Page:
    """A notebook's parameters, resolved once: data set, tier, seeds, config overrides, results folder, budget."""

    name: str
    dataset: str
    tier: str
    seeds: tuple[int, ...]
    overrides: dict[str, Any]
    results_root: Path
    force: bool
    budget: int
    paper: pd.DataFrame
    paper_dataset: str | None
    command_params: dict[str, Any]
    domains: tuple[str, ...] = ()
    domain_names: tuple[str, ...] = ()
    group_size: int = 1
    preset: str | None = None
    _dataset: Any = None

    @property
    def data(self):
        return self._dataset

    # --- what to run ------------------------------------------------------------------------------------------------
    def forget(self, spec: Any = "all", sizes: Any = (1, 2, 3)) -> list[tuple[str, ...]]:
        return parse_forget_sets(spec, self.domains, parse_ints(sizes), canonical=self._dataset.check_domains)

    def forget_like_art(self, spec: Any, sizes: Any) -> list[tuple[str, ...]]:
        """``"auto"``: the domain that stands for Office-Home's Art (Table 4); else :meth:`forget`."""
        if isinstance(spec, str) and spec == "auto":
            return [(analogous_domain(self.domains, "art"),)]
        return self.forget(spec, sizes)

    def figure_forget(self, spec: Any, sizes: Any, n: int | None = None) -> list[tuple[str, ...]]:
        """``"auto"``: the domains like the paper's figures' forgotten ones (:func:`adu_book.paper.figure_forget_sets`);
        else :meth:`forget`; the first ``n`` sets when given."""
        return figure_forget_sets(self.domains, spec, n=n, parse=lambda s: self.forget(s, sizes)[:n])

    def methods(self, spec: Any, default: Sequence[str]) -> tuple[list[str], list[str]]:
        """(registered methods to run, requested but not implemented here)."""
        wanted = list(default) if spec is None or (isinstance(spec, str) and spec.strip() == "all") \
            else parse_list(spec)
        have = set(list_methods())
        return [m for m in wanted if m in have], [m for m in wanted if m not in have]

    def plan(self, variants: Sequence[Variant], forget: Sequence[Sequence[str]], **labels: Any) -> list[PlannedRun]:
        return plan_runs(self.dataset, self.tier, variants, forget, self.seeds, labels=labels, **self.overrides)

    def ensure(self, plan: Sequence[PlannedRun], progress: bool = True) -> RunStatus:
        return ensure_runs(plan, self.results_root, force=self.force, progress=progress, max_new_runs=self.budget,
                           group_size=self.group_size)

    def run(self, plan: Sequence[PlannedRun], notes: Iterable[str] = (), lines: Iterable[str] = ()) -> RunStatus:
        """:meth:`ensure`, then show the status paragraph, the page's ``notes`` (Markdown) and ``lines`` (text),
        and the provenance of the runs shown."""
        status = self.ensure(plan)
        _show(status.message(self.name, self.command_params))
        for note in self.run_notes(status):
            _show(note)
        for note in notes:
            _show(note)
        for line in lines:
            print(line)
        print(provenance_banner(status))
        return status

    def run_notes(self, status: RunStatus) -> list[str]:
        """Markdown notes under the run step: where new runs went (and whether they outlive a Colab VM), the preset,
        and runs on random weights."""
        notes = []
        if status.trained:
            where = self.results_root.resolve()
            text = (f"**{status.trained} run{'s' if status.trained != 1 else ''} trained now**, written to "
                    f"`{where}` (one folder per run, with its `run.json`).")
            if on_colab() and not str(where).startswith(COLAB_DRIVE):
                text += (" **This folder is on the Colab VM and is lost with it:** mount Google Drive and give the "
                         "page `results_root` under `/content/drive/MyDrive` (or rerun the set-up cell after "
                         "mounting), then rerun: runs that exist are skipped.")
            notes.append(text)
        if self.preset:
            notes.append(f"**Preset `{self.preset}`:** {PRESET_NOTES.get(self.preset, self.preset)}.")
        n_random = 0
        if len(status.runs) and "random_weights" in status.runs:
            n_random = int(status.runs.drop_duplicates("path")["random_weights"].fillna(False).astype(bool).sum())
        if n_random or self.overrides.get("pretrained") == RANDOM:
            notes.append(f"**Random weights:** {n_random} of the runs shown use randomly initialised weights "
                         "(`pretrained=random`), a plumbing check: their numbers say nothing about the method "
                         "or the paper.")
        return notes

    def figure_runs(self, status: RunStatus) -> list[tuple[str, Path]]:
        """(label, run folder) of the planned runs a figure page shows, in plan order."""
        return [(p.labels["variant"], p.labels["_path"]) for p in status.planned]

    def before_after(self, status: RunStatus):
        """The figure pages' models (:func:`adu_book.figures.before_after`) for the runs of ``status``; says why a
        run cannot be shown."""
        from .figures import before_after

        fm = before_after([(p.labels["variant"], p.labels["_path"]) for p in status.planned],
                          device=self.overrides.get("device"))
        for label, reason in fm.reasons.items():
            _show(f"**{label} cannot be shown:** {reason}.")
        return fm

    # --- the paper beside ours --------------------------------------------------------------------------------------
    def reference(self, table: int) -> str:
        return self.paper_dataset or paper_reference(self.dataset, self.paper, table)

    def paper_label(self, table: int) -> str:
        return paper_label(self.dataset, self.reference(table))

    def method_rows(self, table: int, sizes: Iterable[int] | None = None) -> pd.DataFrame:
        """The paper's rows of ``table``, one per method, for :meth:`reference` (:func:`adu_book.paper.method_rows`)."""
        return method_rows(self.paper, table, self.reference(table), sizes)

    def variant_rows(self, table: int, variants: Sequence[Variant], sizes: Iterable[int] | None = None) -> pd.DataFrame:
        """The paper's rows of ``table`` matched to ``variants`` (see :func:`adu_book.paper.paper_for_variants`)."""
        return paper_for_variants(self.paper, table, self.reference(table), variants, sizes)

    def paper_note(self, table: int) -> str:
        """A Markdown line naming the paper's dataset beside ours, and the setting of ours."""
        ref, ours = self.reference(table), dataset_name(self.dataset)
        name = DATASET_NAMES.get(ref, ref)
        if ref == self.dataset:
            return f"The paper's column and ours are both **{name}** (ours: `{self.tier}` tier)."
        return (f"The paper's column is **{name}**; ours is **{ours}** (`{self.tier}` tier), which the paper's "
                f"Table {table} does not have, so Δ compares two settings rather than measuring a reproduction gap.")

    def show_paper_note(self, table: int, flagged: pd.DataFrame | None = None) -> None:
        """Show :meth:`paper_note`, then the known inconsistency of each flagged row of ``flagged`` (the paper's rows
        the table shows)."""
        _show(self.paper_note(table))
        if flagged is not None:
            for note in flagged.loc[flagged["flag"] != "", "note"].unique():
                _show(f"**Flag ({dataset_name(self.reference(table))}):** {note}.")

    # --- this execution ---------------------------------------------------------------------------------------------
    def session_cfg(self, method: str = "adu") -> RunConfig:
        return make_config(self.dataset, self.tier, **{**self.overrides, "method": method})

    def describe(self) -> str:
        budget = "all missing runs" if self.budget < 0 else f"at most {self.budget} missing run(s)"
        over = ", ".join(f"{k}={v}" for k, v in self.overrides.items()) or "none"
        preset = f" (preset {self.preset}: {PRESET_NOTES.get(self.preset, '')})" if self.preset else ""
        return wrap(f"Page {self.name}: dataset {self.dataset}, tier {self.tier}{preset}, seeds {list(self.seeds)}, "
                    f"overrides of the tier's defaults: {over}; results under {short_path(self.results_root)}; "
                    f"this execution trains {budget}{' (force: existing runs are redone)' if self.force else ''}.")

    def show_session(self) -> None:
        """Print this session's code, device, weights and data, and what this execution of the page does."""
        print(session_banner(self.session_cfg()))
        print(self.describe())


def page(name: str, dataset: str, tier: str, seeds: Any = None, epochs: int | None = None,
         backbone: str | None = None, pretrained: str | None = None, device: str | None = "auto",
         results_root: str | os.PathLike | None = None, force: bool = False, max_new_runs: int | None = None,
         paper_dataset: str | None = None, group_size: int = 1, sweep: bool = False, shots: Any = NOTEBOOK,
         max_test_per_domain: Any = NOTEBOOK, preset: Any = NOTEBOOK) -> Page:
    """Resolve a notebook's common parameters (``None`` = the tier's default) into a :class:`Page`; ``sweep``: the
    page sweeps one setting and takes the tier's sweep seeds (:data:`adu_book.plans.SWEEP_SEEDS`).

    ``shots``, ``max_test_per_domain`` and ``preset`` default to the notebook's parameters of those names (see the
    module doc); ``preset`` (:data:`PRESETS`) fills the parameters left at None, explicit values win.
    ``pretrained="random"`` trains on random weights (a plumbing check; the page and run.json say so).
    """
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}; choose one of {', '.join(TIERS)}")
    shots, max_test_per_domain, preset = (notebook_parameter(k) if v is NOTEBOOK else v for k, v in (
        ("shots", shots), ("max_test_per_domain", max_test_per_domain), ("preset", preset)))
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)} (or None)")
    ds = get_dataset(dataset)
    given = {"epochs": epochs, "shots": shots, "max_test_per_domain": max_test_per_domain, "backbone": backbone,
             "pretrained": pretrained, "device": None if device in (None, "auto") else device}
    filled = PRESETS.get(preset or "", {})  # the preset's values where the parameter is None
    overrides = {k: v if v is not None else filled.get(k) for k, v in given.items()}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    seeds_used = seeds if seeds is not None else filled.get("seeds")
    budget = max_new_runs if max_new_runs is not None else filled.get("max_new_runs")
    root = Path(results_root).expanduser().resolve() if results_root else results_dir(tier)
    # The completing command repeats what was given (the preset stands for the values it filled in).
    cmd: dict[str, Any] = {"dataset": dataset, "tier": tier, **({"preset": preset} if preset else {}),
                           **{k: v for k, v in given.items() if v is not None}}
    if seeds is not None:
        cmd["seeds"] = json.dumps(seeds) if not isinstance(seeds, str | int) else seeds
    if results_root:
        cmd["results_root"] = str(results_root)
    return Page(name=name, dataset=dataset, tier=tier, seeds=resolve_seeds(seeds_used, tier, sweep),
                overrides=overrides, results_root=root, force=bool(force),
                budget=resolve_budget(budget, tier, bool(force)), paper=load_paper_numbers(),
                paper_dataset=paper_dataset, command_params=cmd, domains=tuple(ds.domains),
                domain_names=tuple(ds.domain_names), group_size=max(1, int(group_size)), preset=preset, _dataset=ds)
