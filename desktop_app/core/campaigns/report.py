"""What a campaign did: counts by state and by provider, failures with their reasons, and
the per-recipient CSV export."""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from desktop_app.core.csv_cells import safe_row
from desktop_app.core.storage.campaigns import Campaign, RecipientOutcome, RecipientState

#: Every state a recipient can be reported in, in the order people read them.
REPORT_STATES = (
    RecipientState.PENDING,  # not rendered yet
    "queued",
    "sending",
    "deferred",
    "held",
    "sent",
    "failed",
    "unknown",
    "bounced",
    RecipientState.SKIPPED,
    "cancelled",
)
#: States after which nothing more happens to a recipient (the progress bar's "done").
DONE_STATES = ("sent", "failed", "bounced", "skipped", "cancelled", "unknown")


@dataclass(frozen=True, slots=True)
class Failure:
    email: str
    reason: str


@dataclass(frozen=True, slots=True)
class CampaignReport:
    campaign: Campaign
    counts: dict[str, int]
    by_provider: dict[str, int]
    failures: tuple[Failure, ...]
    #: From the bounce and unsubscribe mailboxes: "hard", "soft", "unsubscribe" counts.
    feedback: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.campaign.recipients_total or 0

    @property
    def done(self) -> int:
        return sum(self.counts.get(state, 0) for state in DONE_STATES)

    def as_json(self) -> dict[str, Any]:
        campaign = self.campaign
        return {
            "name": campaign.name,
            "state": campaign.state.value,
            "list": campaign.list_name,
            "from": campaign.from_address,
            "scheduled_at": _iso(campaign.scheduled_at),
            "started_at": _iso(campaign.started_at),
            "finished_at": _iso(campaign.finished_at),
            "pause_reason": campaign.pause_reason,
            "recipients": self.total,
            "done": self.done,
            "counts": {state: self.counts.get(state, 0) for state in REPORT_STATES},
            "by_provider": dict(sorted(self.by_provider.items())),
            "failures": [{"email": f.email, "reason": f.reason} for f in self.failures],
            "bounces": {
                "hard": self.feedback.get("hard", 0),
                "soft": self.feedback.get("soft", 0),
            },
            "unsubscribed": self.feedback.get("unsubscribe", 0),
        }


def failures_of(outcomes: Iterable[RecipientOutcome]) -> tuple[Failure, ...]:
    return tuple(
        Failure(email=o.email, reason=o.detail or "no reason recorded")
        for o in outcomes
        if o.state == "failed"
    )


def write_outcomes_csv(
    outcomes: Iterable[RecipientOutcome], path: Path, *, raw: bool = False
) -> int:
    """One row per recipient (email, state, provider, sent_at, detail) into ``path``,
    written beside it and renamed so a failed export never leaves half a file. Cells a
    spreadsheet would run as formulas (a server's reply can be one) get a leading ``'``
    unless ``raw`` (``csv_cells``)."""
    directory = path.parent if str(path.parent) else Path(".")
    temporary: Path | None = None
    count = 0
    try:
        with tempfile.NamedTemporaryFile(
            "w",
            encoding="utf-8",
            newline="",
            dir=directory,
            prefix=f".{path.name}.",
            suffix=".tmp",
            delete=False,
        ) as handle:
            temporary = Path(handle.name)
            writer = csv.writer(handle)
            writer.writerow(["email", "state", "provider", "sent_at", "detail"])
            for outcome in outcomes:
                cells = [
                    outcome.email,
                    outcome.state,
                    outcome.provider or "",
                    _iso(outcome.sent_at) or "",
                    outcome.detail or "",
                ]
                writer.writerow(safe_row(cells, raw=raw))
                count += 1
        os.replace(temporary, path)
    except BaseException:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        raise
    return count


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")
