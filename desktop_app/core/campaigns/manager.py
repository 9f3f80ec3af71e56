"""Campaigns as the window and the command line drive them: create, edit, preview, test,
send now or later, pause, resume, cancel, report.

Every check that can stop a campaign happens here, before anything is queued: the content
is validated when it is saved, and ``send`` renders a sample of real subscribers (the
first ones and a random spread) so a template typo or a field missing from some rows is
an error on the screen, not a hole in thousands of sent mails.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from desktop_app.core.campaigns.lifecycle import (
    CampaignAction,
    CampaignState,
    check_action,
    check_edit,
    state_after_resume,
)
from desktop_app.core.campaigns.message import (
    CampaignSettings,
    Recipient,
    build_campaign_message,
    sender_alignment_warnings,
    validate_campaign_settings,
)
from desktop_app.core.campaigns.rendering import (
    PREFLIGHT_SAMPLE,
    campaign_settings,
    preflight,
    preview,
    recipient_of,
)
from desktop_app.core.campaigns.report import CampaignReport, failures_of, write_outcomes_csv
from desktop_app.core.campaigns.templates import RenderedContent
from desktop_app.core.errors import UserInputError
from desktop_app.core.secrets import SecretStore
from desktop_app.core.storage.bounces import BounceRepository
from desktop_app.core.storage.campaigns import Campaign, CampaignDraft, CampaignRepository
from desktop_app.core.storage.lists import ListRepository, Subscriber
from desktop_app.core.storage.outbox import OutboxRepository
from desktop_app.core.storage.providers import ProviderRepository
from desktop_app.core.validation import check_no_line_breaks, validate_address

MAX_CAMPAIGN_NAME = 100
#: A test send goes to a handful of colleagues, not a list.
MAX_TEST_RECIPIENTS = 20
#: Signs nothing: only used to validate a draft's unsubscribe URL before a key exists.
_VALIDATION_KEY = b"draft-validation-only"


def validate_campaign_name(value: str) -> str:
    check_no_line_breaks("campaign name", value)
    name = value.strip()
    if not name or len(name) > MAX_CAMPAIGN_NAME or not name.isprintable():
        raise UserInputError(
            f"campaign name must be 1 to {MAX_CAMPAIGN_NAME} printable characters, not {value!r}"
        )
    return name


class CampaignManager:
    """See the module docstring. Blocking (database, keyring): call off the GUI thread."""

    def __init__(
        self,
        campaigns: CampaignRepository,
        lists: ListRepository,
        outbox: OutboxRepository,
        providers: ProviderRepository,
        secrets: SecretStore,
        bounces: BounceRepository,
    ) -> None:
        self._bounces = bounces
        self._campaigns = campaigns
        self._lists = lists
        self._outbox = outbox
        self._providers = providers
        self._secrets = secrets

    # -- content ---------------------------------------------------------------------------

    def create(self, draft: CampaignDraft) -> Campaign:
        draft = self._validated(draft)
        return self._campaigns.create(draft, uuid.uuid4().hex)

    def update(self, name: str, draft: CampaignDraft) -> Campaign:
        campaign = self._campaigns.get(name)
        check_edit(campaign.name, campaign.state, campaign.started)
        return self._campaigns.update(campaign.name, self._validated(draft))

    def delete(self, name: str) -> None:
        campaign = self._campaigns.get(name)
        check_action(campaign.name, campaign.state, CampaignAction.DELETE)
        self._campaigns.delete(campaign.name)

    def get(self, name: str) -> Campaign:
        return self._campaigns.get(name)

    def all(self) -> list[Campaign]:
        return self._campaigns.all()

    def preview(self, draft: CampaignDraft, subscriber_email: str | None = None) -> RenderedContent:
        """What one subscriber of the draft's list would read (the first sendable one, or
        the one named), or a one-line ``TemplateError`` to show in place of the preview."""
        recipient = self._sample_recipient(draft.list_name, subscriber_email)
        return preview(self._settings(draft, uid="preview", real_key=False), recipient)

    def warnings(self, draft: CampaignDraft) -> list[str]:
        """Providers that would break DMARC alignment for the From domain."""
        domain = draft.from_address.rpartition("@")[2]
        return sender_alignment_warnings(domain, self._providers.all())

    # -- sending ---------------------------------------------------------------------------

    def send(self, name: str, *, at: float | None = None, now: float | None = None) -> Campaign:
        """Start now (the recipients are copied from the list; the runner renders and the
        engine delivers), or schedule for ``at``. Refuses (one line) when the pre-send check
        fails: nothing is queued then."""
        now = time.time() if now is None else now
        campaign = self._campaigns.get(name)
        action = CampaignAction.SCHEDULE if at is not None and at > now else CampaignAction.SEND
        check_action(campaign.name, campaign.state, action)
        settings = self._stored_settings(campaign)
        sample = self._lists.sample_sendable(campaign.list_name, PREFLIGHT_SAMPLE)
        if not sample:
            raise UserInputError(
                f"list {campaign.list_name!r} has no subscriber to send to (all are "
                "unsubscribed, bounced or suppressed, or it is empty)"
            )
        preflight(settings, [recipient_of(s) for s in sample])
        if action is CampaignAction.SCHEDULE:
            assert at is not None
            self._campaigns.schedule(campaign.id, at)
        else:
            self._campaigns.start(campaign.id, now=now)
        return self._campaigns.get(campaign.name)

    def pause(self, name: str) -> Campaign:
        campaign = self._campaigns.get(name)
        check_action(campaign.name, campaign.state, CampaignAction.PAUSE)
        self._campaigns.pause(campaign.id, "paused by you")
        return self._campaigns.get(campaign.name)

    def resume(self, name: str, *, now: float | None = None) -> Campaign:
        campaign = self._campaigns.get(name)
        check_action(campaign.name, campaign.state, CampaignAction.RESUME)
        state = state_after_resume(
            campaign.scheduled_at, campaign.started, time.time() if now is None else now
        )
        if state is CampaignState.SENDING and not campaign.started:
            # Paused while scheduled and now past its time: start it (pre-send check first).
            self._campaigns.resume(campaign.id, CampaignState.SCHEDULED)
            return self.send(campaign.name, now=now)
        self._campaigns.resume(campaign.id, state)
        return self._campaigns.get(campaign.name)

    def cancel(self, name: str) -> int:
        """Cancel; returns how many waiting messages (or unrendered recipients) were
        stopped. What was sent stays sent, and its report stays."""
        campaign = self._campaigns.get(name)
        check_action(campaign.name, campaign.state, CampaignAction.CANCEL)
        return self._campaigns.cancel(campaign.id)

    def test_send(
        self, name: str, addresses: Sequence[str], *, subscriber_email: str | None = None
    ) -> list[int]:
        """Queue the campaign's message, personalised for one subscriber, to ``addresses``.

        Marked ``[TEST]`` in the subject, with its own Message-ID (the real one is kept for
        the subscriber), and urgent: it goes before any campaign backlog. Returns the outbox
        ids (one message per address)."""
        campaign = self._campaigns.get(name)
        if not addresses:
            raise UserInputError("a test send needs at least one address")
        if len(addresses) > MAX_TEST_RECIPIENTS:
            raise UserInputError(f"a test send goes to at most {MAX_TEST_RECIPIENTS} addresses")
        targets = [validate_address("test address", a.strip()) for a in addresses]
        sample = self._sample_recipient(campaign.list_name, subscriber_email)
        settings = self._stored_settings(campaign)
        test_settings = dataclasses.replace(
            settings,
            campaign_key=f"test-{uuid.uuid4().hex}",
            templates=dataclasses.replace(
                settings.templates, subject=f"[TEST] {settings.templates.subject}"
            ),
        )
        messages = [
            dataclasses.replace(
                build_campaign_message(
                    test_settings, Recipient(email=target, name=sample.name, fields=sample.fields)
                ),
                urgent=True,
            )
            for target in targets
        ]
        return self._outbox.enqueue(messages)

    # -- figures ---------------------------------------------------------------------------

    def report(self, name: str) -> CampaignReport:
        campaign = self._campaigns.get(name)
        return CampaignReport(
            campaign=campaign,
            counts=self._campaigns.counts(campaign.id),
            by_provider=self._campaigns.counts_by_provider(campaign.id),
            failures=failures_of(self._campaigns.outcomes(campaign.id, failures_only=True)),
            feedback=self._bounces.campaign_counts(campaign.id),
        )

    def progress(self) -> dict[int, tuple[int, int]]:
        """(done, total) for every campaign that has started, by campaign id (cheap enough
        for a list refreshed every couple of seconds)."""
        result = {}
        for campaign in self._campaigns.all():
            if campaign.started:
                report = CampaignReport(campaign, self._campaigns.counts(campaign.id), {}, ())
                result[campaign.id] = (report.done, report.total)
        return result

    def export_report(self, name: str, path: Path, *, raw: bool = False) -> int:
        """One row per recipient into ``path``; formula-like cells escaped unless ``raw``."""
        campaign = self._campaigns.get(name)
        return write_outcomes_csv(self._campaigns.outcomes(campaign.id), path, raw=raw)

    # -- helpers ---------------------------------------------------------------------------

    def _validated(self, draft: CampaignDraft) -> CampaignDraft:
        draft = dataclasses.replace(
            draft,
            name=validate_campaign_name(draft.name),
            list_name=draft.list_name.strip(),
            from_address=validate_address("from", draft.from_address.strip()),
            subject=draft.subject.strip(),
            html=draft.html or None,
            text=draft.text or None,
            from_name=(draft.from_name or "").strip() or None,
            reply_to=(draft.reply_to or "").strip() or None,
            unsubscribe_url=(draft.unsubscribe_url or "").strip() or None,
            unsubscribe_mailto=(draft.unsubscribe_mailto or "").strip() or None,
        )
        if not draft.subject:
            raise UserInputError("a campaign needs a subject")
        self._lists.get(draft.list_name)  # an unknown list is an error now, not at send time
        validate_campaign_settings(self._settings(draft, uid="validation", real_key=False))
        return draft

    def _settings(self, draft: CampaignDraft, *, uid: str, real_key: bool) -> CampaignSettings:
        key = None
        if draft.unsubscribe_url:
            key = self._secrets.signing_key() if real_key else _VALIDATION_KEY
        return CampaignSettings(
            campaign_key=uid,
            from_address=draft.from_address,
            templates=draft.templates,
            from_name=draft.from_name,
            reply_to=draft.reply_to,
            unsubscribe_mailto=draft.unsubscribe_mailto,
            unsubscribe_url=draft.unsubscribe_url,
            unsubscribe_secret=key,
            headers=dict(draft.headers or {}),
            attachments=draft.attachments or (),
        )

    def _stored_settings(self, campaign: Campaign) -> CampaignSettings:
        key = self._secrets.signing_key() if campaign.unsubscribe_url else None
        return campaign_settings(campaign, self._campaigns.attachments(campaign.id), key)

    def _sample_recipient(self, list_name: str, subscriber_email: str | None) -> Recipient:
        if subscriber_email:
            found = self._lists.find(list_name, subscriber_email.strip().lower())
            if found is not None:
                return recipient_of(found)
            raise UserInputError(f"{subscriber_email.strip()!r} is not on list {list_name!r}")
        first: list[Subscriber] = self._lists.sample_sendable(list_name, 1)
        if not first:
            raise UserInputError(f"list {list_name!r} has no subscriber to preview with")
        return recipient_of(first[0])
