import multiprocessing

from desktop_app.cli import main

# Guarded: campaign rendering runs in a "spawn" child process, which imports this module
# again under another name (and must not start a second Relaydesk).
if __name__ == "__main__":
    multiprocessing.freeze_support()  # a frozen build (packaging/) starts children through us
    raise SystemExit(main())
