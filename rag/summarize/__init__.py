"""Summarize: one-paragraph briefs and structured summaries of stored reports."""
