"""Retrieve: hybrid search (BM25 + dense) over a snapshot of the committed chunks."""
