"""`rag` starts at once: a command imports only what it uses (issue #18, "A CLI that starts at once").

Each command runs in a fresh interpreter, which then reports the modules it imported.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

HEAVY = ("rouge_score", "nltk", "langchain_text_splitters", "streamlit")
PROBE = """
import json, sys
from rag.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
loaded = sorted({m.split(".")[0] for m in sys.modules})
sys.stderr.write("\\nMODULES " + json.dumps(loaded) + "\\n")
"""


def _modules(*args: str, env_store) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "RAG_STORE": str(env_store)},
    )
    line = [x for x in proc.stderr.splitlines() if x.startswith("MODULES ")]
    assert line, proc.stderr[-2000:]
    return set(json.loads(line[-1][len("MODULES ") :]))


@pytest.mark.parametrize("args", [("--help",), ("sources",), ("sources", "--json")])
def test_light_commands_import_no_heavy_module(args, tmp_path):
    loaded = _modules(*args, env_store=tmp_path / "store")
    assert not loaded & set(HEAVY), f"rag {' '.join(args)} imported {sorted(loaded & set(HEAVY))}"


def test_sources_does_not_load_the_embedder(tmp_path):
    loaded = _modules("sources", env_store=tmp_path / "store")
    assert "tokenizers" not in loaded  # the local embedder's tokenizer: nothing was embedded or counted
    assert "rag" in loaded and "chromadb" in loaded
