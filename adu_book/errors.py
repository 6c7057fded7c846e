"""A page that stops on a user's error says why first, in one line, instead of under a screen of traceback.

A missing dataset offline, an unknown row name, a bad parameter: these errors already carry their cause and the fix
in their message. In a notebook (and under papermill or the book's build) they are shown as that one line, and the
line is also written to the terminal that runs the page, where it comes before papermill's own report. Any other
error keeps its full traceback.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

__all__ = ["install_short_errors", "is_user_error"]

_OURS = tuple(str(Path(__file__).resolve().parent.parent / pkg) for pkg in ("adu_core", "adu_book"))


def _error_types() -> tuple[type[BaseException], ...]:
    from adu_core.backbones import BackboneError
    from adu_core.data.base import DataError
    from adu_core.dispatch import BackendMissing, GridFailed
    from adu_core.train import ConfigError

    return (DataError, BackboneError, ConfigError, BackendMissing, GridFailed, ValueError, KeyError)


def is_user_error(value: BaseException) -> bool:
    """The project's own error classes, or a ValueError/KeyError raised by the project's code (a bad parameter)."""
    from adu_core.backbones import BackboneError
    from adu_core.data.base import DataError
    from adu_core.dispatch import BackendMissing, GridFailed
    from adu_core.train import ConfigError

    if isinstance(value, DataError | BackboneError | ConfigError | BackendMissing | GridFailed):
        return True
    frames = traceback.extract_tb(value.__traceback__)
    return bool(frames) and str(Path(frames[-1].filename).resolve()).startswith(_OURS)


def _message(value: BaseException) -> str:
    text = value.args[0] if isinstance(value, KeyError) and value.args else str(value)
    return f"{type(value).__name__}: {text}"


def install_short_errors() -> bool:
    """In IPython: show the project's user errors as their one-line cause (see the module doc). False elsewhere."""
    try:
        shell = get_ipython()  # type: ignore[name-defined]  # noqa: F821 - defined inside IPython only
    except NameError:
        return False

    def handler(shell, etype, value, tb, tb_offset=None):
        if not is_user_error(value):
            return shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
        line = _message(value)
        print(f"\nThe page stopped: {line}\n", file=sys.__stderr__, flush=True)
        shell._showtraceback(etype, value, [line])
        return None

    shell.set_custom_exc(_error_types(), handler)
    return True
