"""Up, down or unknown for one provider, its incidents, and where its watched time goes.

Pure policy, fed with observations by the monitor (probes and real sends) and a clock:

- The first success makes a provider ``up``. A failure makes it *suspect*; ``incident_after``
  consecutive failures confirm an incident, which starts at the FIRST failure of the streak.
  A success before that clears the suspicion, and the suspect time counts as up.
  So downtime is exactly the union of incidents: the uptime figure and the incident list
  can never disagree.
- Time is only counted while watched (from the first observation on) and is time-weighted
  (seconds up / down), so probing more often while down does not skew uptime.
- Maintenance windows are cut out of every span (counted as maintenance seconds), any open
  incident ends where a window starts, and the provider is ``unknown`` again until the first
  observation after it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

#: (start, end) -> the maintenance intervals inside it, merged and clipped; (t, t) answers
#: [(t, t)] when a window covers the instant t (see health/maintenance.intervals).
MaintenanceLookup = Callable[[float, float], list[tuple[float, float]]]
#: Called with (start, end, status) for each watched span; status up/down/maintenance.
SpanSink = Callable[[float, float, str], None]

UP = "up"
DOWN = "down"
UNKNOWN = "unknown"
MAINTENANCE = "maintenance"


@dataclass
class OpenIncident:
    """An incident being recorded (its row id once stored)."""

    started_at: float
    cause: str
    failures: int
    row_id: int | None = None


@dataclass(frozen=True, slots=True)
class IncidentChange:
    """An incident opened, grew, or ended (the monitor stores and announces it)."""

    incident: OpenIncident
    ended_at: float | None = None  # set when it ended
    opened: bool = False  # True for the change that confirmed it


class ProviderTracker:
    """Status, incidents and time accounting for one provider."""

    def __init__(
        self,
        *,
        incident_after: int,
        maintenance: MaintenanceLookup,
        spans: SpanSink,
        open_incident: OpenIncident | None = None,
    ) -> None:
        self.incident_after = max(1, incident_after)
        self._maintenance = maintenance
        self._spans = spans
        # What watched time counts as: up, down, or unknown (not counted).
        self._status = DOWN if open_incident is not None else UNKNOWN
        self._accrued_until: float | None = None  # None: not watched yet
        self._suspect_since: float | None = None
        self._streak = 0
        self._streak_cause = ""
        self.incident = open_incident
        self.last_observed_at: float | None = None

    # -- what people see -------------------------------------------------------------------

    def status_at(self, at: float) -> str:
        """up / down / maintenance / unknown, as a person should see it now.

        A suspect provider (it failed, not yet often enough for an incident) shows as down:
        its last word was a failure. Only the time accounting waits for the verdict.
        """
        if self._maintenance(at, at):
            return MAINTENANCE
        if self._suspect_since is not None:
            return DOWN
        return self._status

    @property
    def consecutive_failures(self) -> int:
        return self._streak

    # -- observations ----------------------------------------------------------------------

    def observe(self, at: float, ok: bool, cause: str = "") -> list[IncidentChange]:
        """A probe or a send ended at ``at``; returns incident changes to store."""
        changes = self._leave_maintenance_if_passed(at)
        if self._maintenance(at, at):
            return changes  # observations during a window say nothing about uptime
        self.last_observed_at = at
        if ok:
            changes += self._success(at)
        else:
            changes += self._failure(at, cause)
        return changes

    def accrue(self, now: float) -> list[IncidentChange]:
        """Count watched time up to ``now`` (called before every flush)."""
        changes = self._leave_maintenance_if_passed(now)
        if self._suspect_since is None:
            self._count(now, self._status)
        return changes

    # -- internals -------------------------------------------------------------------------

    def _success(self, at: float) -> list[IncidentChange]:
        changes: list[IncidentChange] = []
        if self._accrued_until is None:
            self._accrued_until = at
        else:
            # A suspicion that was never confirmed counts as the status before it.
            self._count(at, self._status)
        if self.incident is not None:
            changes.append(IncidentChange(self.incident, ended_at=at))
            self.incident = None
        self._status = UP
        self._suspect_since = None
        self._streak = 0
        return changes

    def _failure(self, at: float, cause: str) -> list[IncidentChange]:
        if self._accrued_until is None:
            self._accrued_until = at
        if self._status == DOWN and self.incident is not None:
            self._count(at, DOWN)
            self.incident.failures += 1
            self._streak += 1
            return [IncidentChange(self.incident)]
        if self._suspect_since is None:
            self._count(at, self._status)  # up (or unknown) until the first failure
            self._suspect_since = at
            self._streak = 0
            self._streak_cause = cause
        self._streak += 1
        if self._streak < self.incident_after:
            return []
        # Confirmed: down since the first failure of the streak.
        self._count(at, DOWN)
        self._status = DOWN
        self.incident = OpenIncident(
            started_at=self._suspect_since, cause=self._streak_cause, failures=self._streak
        )
        self._suspect_since = None
        return [IncidentChange(self.incident, opened=True)]

    def _leave_maintenance_if_passed(self, at: float) -> list[IncidentChange]:
        """A window that began since the last accounting ends incidents and suspicion."""
        since = self._accrued_until
        if since is None or at <= since:
            return []
        windows = self._maintenance(since, at)
        if not windows or (self._status == UNKNOWN and self._suspect_since is None):
            return []
        window_start = windows[0][0]
        if window_start <= since and self._maintenance(since - 1e-3, since):
            return []  # already inside it when last counted: handled then
        self._count(window_start, self._status)  # an unconfirmed suspicion counts as before
        changes: list[IncidentChange] = []
        if self.incident is not None:
            changes.append(IncidentChange(self.incident, ended_at=window_start))
            self.incident = None
        self._suspect_since = None
        self._streak = 0
        # Unknown until the first observation after the window.
        self._status = UNKNOWN
        return changes

    def _count(self, until: float, status: str) -> None:
        """Give [accrued_until, until) to ``status``, maintenance cut out and counted as such."""
        since = self._accrued_until
        if since is None or until <= since:
            return
        self._accrued_until = until
        at = since
        for start, end in self._maintenance(since, until):
            if start > at and status != UNKNOWN:
                self._spans(at, start, status)
            self._spans(max(start, at), end, MAINTENANCE)
            at = max(at, end)
        if at < until and status != UNKNOWN:
            self._spans(at, until, status)
