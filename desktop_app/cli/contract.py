"""What every command shares: exit codes, one-line errors, and the streams it writes to.

The command line is a contract that scripts and tests rely on (see README). Every error a
user can cause is one line on stderr and a non-zero exit, never a traceback:
exit 1 for trouble in the environment (keyring, locked database, failed probe),
exit 2 for bad input, exit 3 when ``run --timeout`` ends with mail still pending,
exit 4 when the disk holding the data folder is full (the line names the file system and
the file; ``run`` stops cleanly and nothing queued is lost: run it again once there is room),
exit 141 (the shell's 128 + SIGPIPE) without a word when the reader of stdout went away.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, TextIO

EXIT_OK = 0
EXIT_ENVIRONMENT = 1
EXIT_USAGE = 2
EXIT_PENDING = 3
#: Not 1: a script (cron, systemd) can tell "free some space" from other trouble and retry.
EXIT_DISK_FULL = 4
EXIT_CLOSED_PIPE = 141


class Parser(argparse.ArgumentParser):
    """argparse, but its errors are our one-line errors (exit 2), and no abbreviations:
    with them ``send --text hi`` quietly meant ``--text-file hi``, and a future option
    could change what an old script's abbreviation means. Subcommand parsers inherit
    this class (argparse builds them with ``type(parent)``), so the rule holds throughout.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> Any:
        from desktop_app.core.errors import UserInputError

        raise UserInputError(message)


@dataclass(frozen=True, slots=True)
class Streams:
    """Where a command reads and writes (tests pass their own)."""

    out: TextIO
    stdin: TextIO
