"""adu_book: the engine of the companion's book — what the pages in ``book/`` call, on top of ``adu_core``.

A page (a notebook in ``book/``) calls :func:`notebook_defaults`, resolves its papermill parameters into a
:class:`Page` with :func:`page`, plans the runs its tables need, trains only the missing ones (:meth:`Page.run`),
and shows ours beside the paper. The modules, each what its name says:

* ``notebook`` — a page's parameters and the steps every page shares (:class:`Page`);
* ``plans`` — which runs a page needs (forget sets, seeds, table rows); ``grids`` — runs that change one thing;
* ``runs`` — running only the missing runs, within the page's budget, and reading back those that exist;
* ``paper`` — the paper's numbers and which of them stand beside ours; ``names`` — display names;
* ``tables`` — tables beside the paper; ``plots`` — figures; ``figures`` — the t-SNE and attention pages' models;
* ``forest`` — forest plots of paired effects (the ledger's and the table pages' headline figures); ``legibility`` —
  every figure's text positions, saved in its PNG, and the checks a test of the built book runs on them;
* ``facts`` and ``conclusions`` — the numbers and phrases each page's prose glues (never typed);
* ``provenance`` — code, device, weights and data behind the numbers; ``protocol`` — the protocol page;
* ``book_plan`` — every page's runs at once: what the whole book costs, and one command that completes it.

The library (``adu_core``) never imports this package: a builder who only wants the method does not need it.
"""

from __future__ import annotations

import importlib

__all__ = ["Page", "book_file", "notebook_defaults", "page", "unavailable_note"]


def book_file(name: str):
    """A file of the book's folder (``book/<name>``) of the project, wherever the page runs from."""
    from adu_core.paths import project_root

    return project_root() / "book" / name


def notebook_defaults() -> None:
    """What a page sets before it loads the engine: plain-text progress bars (tqdm warns once, at its import, when
    ipywidgets is missing), pandas tables that show whole cells, user errors shown as their one-line cause
    (:mod:`adu_book.errors`), and figures drawn with the positions of their text (:mod:`adu_book.legibility`)."""
    import warnings

    import pandas as pd

    warnings.filterwarnings("ignore", message="IProgress not found")
    pd.set_option("display.max_colwidth", None)
    pd.set_option("display.width", 200)
    from .errors import install_short_errors

    install_short_errors()
    from .legibility import install

    install()


def __getattr__(name: str):
    # Lazy, so that a page can call notebook_defaults() before the engine (and torch, tqdm) load.
    if name in ("Page", "page", "unavailable_note"):
        return getattr(importlib.import_module(".notebook", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
