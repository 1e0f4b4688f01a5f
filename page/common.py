"""Streamlit pieces shared by the page (``app.py``) and its tab modules (``page.library_tab``, ``page.eval_tab``).

These render widgets, so they import Streamlit; the pure helpers are in
``page.ui_helpers``. Nothing here imports ``app`` (it is a script, not a module).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import streamlit as st

from page import ui_helpers as ui
from rag.errors import RagError

log = logging.getLogger("dossier.app")


def error_text(exc: BaseException, doing: str = "in the page") -> str:
    """The one message the page shows for an error: a RagError's own, else a short note for a bug (logged).

    ``doing`` says what failed, for the server log ("while answering", "in the library").
    """
    if isinstance(exc, RagError):
        return str(exc)
    log.error("unexpected error %s", doing, exc_info=exc)
    return (
        f"Something went wrong ({type(exc).__name__}: {exc}). This is a bug in Dossier; "
        "the details are in the server log."
    )


def show_error(text: str) -> None:
    """An error box (the text is escaped: it may quote report text or a file name)."""
    st.error(ui.md_escape(text), icon=":material/error:")


def guard(action: Callable[[], Any]) -> Any:
    """Run ``action``; show a RagError's message (or a short note for a bug) instead of a traceback."""
    try:
        return action()
    except Exception as exc:
        show_error(error_text(exc))
    return None


def progress_bar(label: str) -> tuple[Any, Callable[[int, int, str], None]]:
    bar = st.progress(0.0, text=label)

    def update(done: int, total: int, name: str) -> None:
        bar.progress(min(done / max(total, 1), 1.0), text=ui.md_escape(f"{label} {done}/{total} {name}"))

    return bar, update


def source_label(infos: list) -> Callable[[str], str]:
    titles = {i.source: ui.shorten(i.title, 60) for i in infos}
    return lambda s: f"{titles[s]} ({s})" if titles.get(s) and titles[s] != s else s
