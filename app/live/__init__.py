"""Live dissemination: a collection's new objects streamed to partners as they are stored."""
