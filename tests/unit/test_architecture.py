"""The import rules of docs/architecture.md, checked statically over the source tree (no imports run)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

# Third-party package -> the only files (or folders, ending in "/") that may import it.
ALLOWED = {
    "chromadb": ["rag/adapters/chroma.py"],
    "openai": ["rag/adapters/openai_chat.py", "rag/adapters/openai_errors.py"],
    "onnxruntime": ["rag/adapters/embedders.py"],
    "onnx": ["rag/adapters/onnx_bert.py"],
    "sentence_transformers": ["rag/adapters/embedders.py"],
    "torch": ["rag/adapters/embedders.py"],
    "tiktoken": ["rag/adapters/tokens.py", "rag/adapters/embedders.py"],
    "streamlit": ["app.py", "page/"],
    "langchain_text_splitters": ["rag/ingest/chunking.py"],
    "rouge_score": ["rag/evaluation/"],
    "nltk": ["rag/evaluation/"],
}
# Dossier package -> the Dossier packages it may import (besides itself). Arrows of docs/architecture.md.
LAYERS = {
    "rag.nlp": {"rag.errors"},
    "rag.types": {"rag.nlp"},
    "rag.ports": {"rag.types"},
    "rag.ingest": {"rag.nlp", "rag.types", "rag.ports", "rag.errors", "rag.config", "rag.cache"},
    "rag.retrieve": {"rag.nlp", "rag.types", "rag.ports", "rag.errors", "rag.config", "rag.cache"},
    "rag.answer": {
        "rag.nlp",
        "rag.types",
        "rag.ports",
        "rag.errors",
        "rag.config",
        "rag.cache",
        "rag.prompts",
        "rag.replies",
        "rag.retrieve",
        "rag.adapters.tokens",
    },
    "rag.summarize": {
        "rag.nlp",
        "rag.types",
        "rag.ports",
        "rag.errors",
        "rag.config",
        "rag.cache",
        "rag.prompts",
        "rag.replies",
        "rag.schema",
        "rag.adapters.tokens",
    },
    "rag.adapters": {"rag.types", "rag.ports", "rag.errors", "rag.config", "rag.cache", "rag.nlp"},
}
SOURCES = [*sorted((REPO / "rag").rglob("*.py")), REPO / "app.py", *sorted((REPO / "page").rglob("*.py"))]


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
            out += [f"{node.module}.{a.name}" for a in node.names if node.module == "rag"]
    return out


def _allowed(rel: str, places: list[str]) -> bool:
    return any(rel == p or (p.endswith("/") and rel.startswith(p)) for p in places)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_third_party_imports_stay_in_their_adapters(path):
    rel = path.relative_to(REPO).as_posix()
    bad = [
        name
        for name in _imports(path)
        if name.split(".")[0] in ALLOWED and not _allowed(rel, ALLOWED[name.split(".")[0]])
    ]
    assert not bad, f"{rel} imports {bad}; see docs/architecture.md for where each may be imported"


@pytest.mark.parametrize("path", sorted((REPO / "rag").rglob("*.py")), ids=lambda p: str(p.relative_to(REPO)))
def test_packages_import_only_along_the_arrows(path):
    rel = path.relative_to(REPO).with_suffix("").as_posix().replace("/", ".").removesuffix(".__init__")
    layer = next((k for k in LAYERS if rel == k or rel.startswith(k + ".")), None)
    if layer is None:
        return  # config, errors, pipeline, cli, present, evaluation...: the edges may import any stage
    bad = [
        name
        for name in _imports(path)
        if name.startswith("rag.")
        and not name.startswith(layer + ".")
        and name != layer
        and not any(name == ok or name.startswith(ok + ".") for ok in LAYERS[layer])
    ]
    assert not bad, f"{rel} ({layer}) imports {bad}, against the arrows of docs/architecture.md"


def test_the_library_never_imports_the_page():
    for path in sorted((REPO / "rag").rglob("*.py")):
        assert not [n for n in _imports(path) if n.split(".")[0] in {"page", "app"}], path
