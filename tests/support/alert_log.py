"""A small alert log as the alerter writes it, for the tests of what shows it (CLI, window)."""

from __future__ import annotations

import time

from desktop_app.core.workspace import Workspace


def log_two_alerts(workspace: Workspace) -> tuple[int, int]:
    """A cleared breaker alert for alpha (10 min ago) and an open, e-mailed provider-down
    alert for bravo (1 min ago); returns their ids (cleared, open)."""
    alerts = workspace.alerts
    now = time.time()
    cleared = alerts.add(
        raised_at=now - 600, rule="breaker_open", subject="alpha", severity="warning",
        message="Circuit breaker opened for alpha", email_outbox_id=None,
    )  # fmt: skip
    alerts.resolve(cleared, now - 300)
    open_one = alerts.add(
        raised_at=now - 60, rule="provider_down", subject="bravo", severity="critical",
        message="bravo has been down for 61 s", email_outbox_id=7,
    )  # fmt: skip
    return cleared, open_one
