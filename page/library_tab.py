"""The page's Library tab: add, forget and re-index reports (Streamlit view code).

The page's cached resources stay in ``app.py``; it passes in the store's write
lock (``write_lock(fingerprint)``) and the callback that forgets the cached
views of the store after a change (``library_changed``).
"""

from __future__ import annotations

import logging
import math
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from page import ui_helpers as ui
from page.common import error_text, progress_bar, source_label
from rag.config import Settings

log = logging.getLogger("dossier.app")
WriteLock = Callable[[str], threading.Lock]


def _upload_dir() -> Path:
    """A temp folder of this session for uploaded files (they are removed once ingested)."""
    if "upload_dir" not in st.session_state:
        st.session_state["upload_dir"] = tempfile.mkdtemp(prefix="dossier-upload-")
    return Path(st.session_state["upload_dir"])


def _flash(level: str, text: str) -> None:
    st.session_state.setdefault("library_msgs", []).append((level, text))


def _library_action(action: Callable[[], None], library_changed: Callable[[], None]) -> None:
    """Run a library change, keep its messages (or its error) for after the rerun, refresh the views."""
    try:
        action()
    except Exception as exc:
        _flash("error", error_text(exc, "in the library"))
    library_changed()
    st.rerun()


def _do_ingest(pipe: Any, fp: str, files: list, write_lock: WriteLock) -> None:
    bar, update = progress_bar("Reading and indexing\u2026")
    with write_lock(fp):
        report = ui.ingest_uploads(
            pipe, [(f.name, f.getvalue()) for f in files], _upload_dir(), progress=update
        )
    bar.empty()
    for level, line in ui.ingest_summary(report):
        _flash(level, line)
    st.session_state["uploader_n"] = st.session_state.get("uploader_n", 0) + 1  # empties the uploader


def _do_forget(pipe: Any, fp: str, source: str, write_lock: WriteLock) -> None:
    with write_lock(fp):
        removed = pipe.forget(source)
    _flash(
        "success" if removed else "error",
        f"Forgot {source}." if removed else f"No stored report is named {source}.",
    )


def _do_reindex(pipe: Any, fp: str, write_lock: WriteLock) -> None:
    bar, update = progress_bar("Re-embedding\u2026")
    with write_lock(fp):
        report = pipe.reindex(progress=update)
    bar.empty()
    _flash(
        "success", f"Re-indexed {len(report.added) + len(report.updated)} report(s), {report.chunks} chunks."
    )
    for e in report.rejected:
        _flash("error", f"{e.get('path')}: {e.get('reason')}")


def library_page(
    pipe: Any,
    fp: str,
    settings: Settings,
    infos: list,
    first: dict | None,
    *,
    write_lock: WriteLock,
    library_changed: Callable[[], None],
) -> None:
    st.subheader("Add reports")
    limit = settings.max_file_mb
    files = st.file_uploader(
        f"Reports: txt, md, html, pdf or docx, up to {limit:g} MB each",
        type=ui.UPLOAD_TYPES,
        accept_multiple_files=True,
        key=f"uploader_{st.session_state.get('uploader_n', 0)}",
        max_upload_size=max(1, math.ceil(limit)),
    )
    if st.button("Add to the library", key="ingest_go", type="primary", disabled=not files):
        _library_action(lambda: _do_ingest(pipe, fp, files, write_lock), library_changed)
    for level, text in st.session_state.pop("library_msgs", []):
        getattr(st, level)(ui.md_escape(text))
    if first and (first.get("added") or first.get("rejected")):
        st.caption(
            f"First start: indexed {ui.plural(len(first.get('added', [])), 'sample report')} from data/."
        )
        for e in first.get("rejected", []):
            st.error(ui.md_escape(f"data/: {e.get('path')}: {e.get('reason')}"))

    st.subheader("Reports")
    if not infos:
        st.info("No reports yet. Add some above.")
    else:
        st.dataframe(
            ui.sources_table(infos),
            hide_index=True,
            key="library_table",
            column_config={"Chunks": st.column_config.NumberColumn(format="%d")},
        )
    left, mid, right = st.columns([3, 1, 1], vertical_alignment="bottom")
    with left:
        victim = st.selectbox(
            "Forget a report",
            [i.source for i in infos],
            index=None,
            key="forget_source",
            format_func=source_label(infos),
            placeholder="Choose a report",
        )
    if mid.button("Forget", key="forget_go", disabled=victim is None) and victim is not None:
        _library_action(lambda: _do_forget(pipe, fp, str(victim), write_lock), library_changed)
    if right.button(
        "Re-index all",
        key="reindex_go",
        disabled=not infos,
        help="Re-chunk and re-embed every stored report with the configured embedder.",
    ):
        _library_action(lambda: _do_reindex(pipe, fp, write_lock), library_changed)
    if st.button(
        "Refresh",
        key="library_refresh",
        type="tertiary",
        help="Re-read the store (e.g. after `rag ingest` in a terminal).",
    ):
        library_changed()
        st.rerun()
