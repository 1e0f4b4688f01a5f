"""Performance benchmarks of Dossier (``python -m bench.run``; see BENCHMARKS.md)."""
