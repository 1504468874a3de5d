"""The ``tearline`` command line: ``main`` assembles the command groups defined beside it."""
