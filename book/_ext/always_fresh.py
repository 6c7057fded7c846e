"""Sphinx extension: every build re-reads (and so re-executes) every page.

A page's inputs are not only its source: the committed runs, the results folder, the data on this machine. Sphinx
re-reads only pages whose source changed, and an execution cache replays old outputs, so a rebuild after a run
landed, or after `ADU_DATA_ROOT` was set, would still show the old state. With this extension (and
`execute_notebooks: force` in `_config.yml`) `jupyter-book build .` always shows the current state.
"""

from __future__ import annotations


def _everything_outdated(app, env, added, changed, removed) -> list[str]:
    return sorted(set(env.found_docs) - set(added) - set(changed))


def setup(app) -> dict:
    app.connect("env-get-outdated", _everything_outdated)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
