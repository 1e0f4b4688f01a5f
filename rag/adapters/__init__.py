"""Adapters to outside libraries and services: embedders, Chroma, OpenAI, tiktoken."""
