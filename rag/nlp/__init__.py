"""Pure text processing shared by every stage: text, dates, claims, entities."""
