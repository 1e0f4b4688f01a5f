"""Answer: question analysis, follow-up rewriting, extractive and LLM answers."""
