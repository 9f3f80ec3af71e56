"""The PySide6 face of Relaydesk: shows core state and forwards intents, nothing more."""

from __future__ import annotations

import ctypes
import sys

#: Added to the reference counts of None, True and False where PySide6 leaks them.
_RESERVE = 1 << 60


def _protect_singletons_from_pyside_refcount_leak() -> bool:
    """Keep PySide6 6.12 on Python 3.11 from aborting the app after a few thousand calls.

    PySide6 6.12.0 (abi3 wheels) returns None from every void method, and True from
    ``Signal.emit`` and ``disconnect``, without taking a reference: correct on Python 3.12+,
    where those objects are immortal (PEP 683), but on 3.11 every call takes one reference
    away, and once a count reaches zero CPython aborts ("Fatal Python error: none_dealloc" or
    "bool_dealloc"). The GUI emits a few signals per message sent, so a 10,000-message
    campaign killed the window. PySide6 6.11 does not do this.

    Measured rather than guessed from version numbers: a few calls are made and counted, and
    only if they leak are the three counts raised far enough (the 3.12 cure, by hand) that
    no run can bring them to zero. Returns whether it did. Remove once the project requires
    Python 3.12 or a PySide6 without the leak.
    """
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False  # immortal there
    if hasattr(sys, "getobjects"):
        return False  # a Py_TRACE_REFS build: the count is not the first field
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        ping = Signal()

    probe = _Probe()
    calls = 16
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(calls):
        probe.ping.emit()  # returns True
        probe.setObjectName("")  # returns None
    leaked = max(none_before - sys.getrefcount(None), true_before - sys.getrefcount(True))
    if leaked < calls:
        return False
    for singleton in (None, True, False):
        ctypes.c_ssize_t.from_address(id(singleton)).value += _RESERVE
    return True


PYSIDE_REFCOUNT_WORKAROUND = _protect_singletons_from_pyside_refcount_leak()
