"""The command line (`proxyvote ...`): an edge that loads files, converts them once, and calls the app."""

from proxyvote.cli.main import main

__all__ = ["main"]
