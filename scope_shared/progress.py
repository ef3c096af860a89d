"""Progress bars only where someone watches them, and quiet third-party libraries.

A bar redrawn a few hundred times is useful on a terminal and noise in a log or CI (each redraw is a
line there). So the library draws a bar only when it was asked for one *and* standard error is a
terminal *and* the user did not ask for quiet (``SCOPE_QUIET=1`` in the environment, or ``--quiet`` on
the command line, which sets it). Loading the bundled embedder runs under `quiet_third_party`, so
transformers' "Loading weights" bar and its load-time notices do not reach the user either.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
QUIET_ENV = "SCOPE_QUIET"


def is_quiet() -> bool:
    """True when ``SCOPE_QUIET`` is set to anything but ``""``/``0``/``false``/``no``."""
    return os.environ.get(QUIET_ENV, "").strip().lower() not in ("", "0", "false", "no")


def set_quiet(quiet: bool = True) -> None:
    """Turn progress bars off (or back on) for this process and the processes it starts."""
    if quiet:
        os.environ[QUIET_ENV] = "1"
    else:
        os.environ.pop(QUIET_ENV, None)


def on_terminal() -> bool:
    """Whether standard error (where bars are drawn) is an interactive terminal."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


def show_bars(wanted: bool = True) -> bool:
    """Whether to draw a bar the caller wants: only on a terminal, never when quiet."""
    return bool(wanted) and not is_quiet() and on_terminal()


def progress(iterable: Iterable[T], desc: str, total: int | None = None, enabled: bool = True,
             **kwargs: Any) -> Iterable[T]:
    """``iterable`` wrapped in a tqdm bar when `show_bars` allows it, else returned as it is."""
    if not show_bars(enabled):
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, **kwargs)


@contextlib.contextmanager
def quiet_third_party() -> Iterator[None]:
    """Silence transformers' and huggingface_hub's progress bars, notices and load-time warnings for
    the block (their settings are restored after it)."""
    loggers = [logging.getLogger(n) for n in ("transformers", "sentence_transformers", "huggingface_hub")]
    levels = [lg.level for lg in loggers]
    env_before = os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS")
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    tf_logging: Any = None
    bars_were_on = True
    verbosity = None
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            from transformers.utils import logging as tf_logging  # type: ignore[no-redef]

            bars_were_on = tf_logging.is_progress_bar_enabled()
            verbosity = tf_logging.get_verbosity()
            tf_logging.disable_progress_bar()
            tf_logging.set_verbosity_error()
        except ImportError:  # pragma: no cover - a hard dependency
            tf_logging = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
        if tf_logging is not None:
            if bars_were_on:
                tf_logging.enable_progress_bar()
            if verbosity is not None:
                tf_logging.set_verbosity(verbosity)
        if env_before is None:
            os.environ.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)
        else:
            os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = env_before
