"""The ``relaydesk`` command line (no Qt import anywhere in this package)."""

from desktop_app.cli.main import main

__all__ = ["main"]
