"""One exception root for everything Relaydesk raises on purpose.

Subclasses also inherit the matching built-in error (the aiosmtplib habit), so callers
can catch ``ValueError`` or ``LookupError`` without knowing our names. Every message is
one line a user can act on and never contains a secret.
"""

from __future__ import annotations

import os


class RelaydeskError(Exception):
    """Root of every error Relaydesk raises deliberately."""


class UserInputError(RelaydeskError, ValueError):
    """Something the user typed or pointed at is not acceptable."""


class HeaderInjectionError(UserInputError):
    """A header value or address contains CR, LF or NUL."""


class ProviderNotFoundError(RelaydeskError, LookupError):
    """No provider has the given name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no provider named {name!r}")
        self.name = name


class DuplicateProviderError(UserInputError):
    """A provider with this name already exists."""

    def __init__(self, name: str) -> None:
        super().__init__(f"a provider named {name!r} already exists")
        self.name = name


class UnknownSettingError(UserInputError):
    """The settings key is not one Relaydesk knows."""


class EnvironmentProblem(RelaydeskError):
    """The machine, not the user's input, is in the way (no keyring, locked database...).

    These are expected in the field and get a clear message, never a traceback.
    """


class KeyringUnavailableError(EnvironmentProblem):
    """No usable OS keyring: passwords cannot be stored or read."""


class DatabaseLockedError(EnvironmentProblem):
    """Another process holds the database (or the data directory) for too long."""


class DatabaseCorruptError(EnvironmentProblem):
    """The database file cannot be read as a Relaydesk database."""


class DiskFullError(EnvironmentProblem):
    """The file system holding ``path`` has no room left (issue 14): one line saying which.

    ``mount_point`` is where that file system is mounted and ``free`` its free bytes when
    the error was made (None if unknown); ``core/disk_space.py`` finds both.
    """

    def __init__(self, path: object, mount_point: object, free: int | None) -> None:
        folder = os.path.dirname(str(path)) or str(path)
        room = "free space unknown" if free is None else f"{free:,} bytes free"
        super().__init__(
            f"the disk holding {folder} (file system {mount_point}, {room}) is full: cannot "
            f"write {path}; free some space and try again (nothing already queued is lost)"
        )
        self.path = str(path)
        self.mount_point = str(mount_point)
        self.free = free


class AlreadyRunningError(EnvironmentProblem):
    """Another Relaydesk instance is already delivering from this data directory."""


class ListNotFoundError(RelaydeskError, LookupError):
    """No subscriber list has the given name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no list named {name!r}")
        self.name = name


class RejectedRowsError(UserInputError):
    """An import found invalid rows and the user did not accept importing the valid ones.

    ``report`` (an ImportReport) says which rows and why; nothing was imported.
    """

    def __init__(self, message: str, report: object) -> None:
        super().__init__(message)
        self.report = report


class CampaignNotFoundError(RelaydeskError, LookupError):
    """No campaign has the given name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no campaign named {name!r}")
        self.name = name
