"""Ingest: files to normalised documents, chunks, and the indexing that stores them."""
