"""Entry point of the PyInstaller bundle (packaging/relaydesk.spec): ``relaydesk ...``."""

import multiprocessing
import sys

from desktop_app.cli import main

if __name__ == "__main__":
    # Campaign rendering runs in a "spawn" child. Frozen, there is no python to spawn: the
    # child is this same executable with special arguments, and freeze_support() is what
    # turns that start into the child (and exits) instead of a second Relaydesk.
    multiprocessing.freeze_support()
    sys.exit(main())
