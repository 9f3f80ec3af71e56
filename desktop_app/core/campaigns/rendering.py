"""From a stored campaign to messages: settings, previews, the pre-send check, batches.

Rendering runs a batch at a time just ahead of delivery (campaigns/runner.py), not all at
once when a campaign starts: building one MIME message costs about a millisecond in the
email package, so 100,000 of them up front would keep the user waiting minutes before the
first mail leaves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from desktop_app.core.campaigns.message import (
    Attachment,
    CampaignSettings,
    Recipient,
    build_campaign_message,
    validate_campaign_settings,
)
from desktop_app.core.campaigns.templates import (
    RenderedContent,
    TemplateError,
    check,
    template_context,
)
from desktop_app.core.errors import UserInputError
from desktop_app.core.storage.campaigns import Campaign, PendingRecipient, RenderedBatch
from desktop_app.core.storage.lists import Subscriber
from desktop_app.core.storage.outbox import NewMessage

#: Subscribers the pre-send check renders (the first ones and a random spread): a field
#: missing from some rows is found before anything is queued, not 30,000 messages in.
PREFLIGHT_SAMPLE = 200


def campaign_settings(
    campaign: Campaign, attachments: Sequence[Attachment], signing_key: bytes | None
) -> CampaignSettings:
    return CampaignSettings(
        campaign_key=campaign.uid,
        from_address=campaign.from_address,
        templates=campaign.templates,
        from_name=campaign.from_name,
        reply_to=campaign.reply_to,
        unsubscribe_mailto=campaign.unsubscribe_mailto,
        unsubscribe_url=campaign.unsubscribe_url,
        unsubscribe_secret=signing_key,
        headers=dict(campaign.headers),
        attachments=tuple(attachments),
    )


def recipient_of(subscriber: Subscriber | PendingRecipient) -> Recipient:
    return Recipient(email=subscriber.email, name=subscriber.name or None, fields=subscriber.fields)


def preview(settings: CampaignSettings, recipient: Recipient) -> RenderedContent:
    """What ``recipient`` would read, or a one-line ``TemplateError``."""
    return check(
        settings.templates,
        template_context(
            email=recipient.email,
            name=recipient.name,
            fields=recipient.fields,
            unsubscribe_url=settings.unsubscribe_url or settings.unsubscribe_mailto,
        ),
    )


def preflight(settings: CampaignSettings, sample: Sequence[Recipient]) -> None:
    """Everything that must hold before anything is queued; raises ``UserInputError``
    (a ``TemplateError`` naming the subscriber for a template that fails on one).

    One whole message is built (headers, MIME, attachments); for the rest of the sample only
    the templates are rendered, which is what varies per subscriber and costs a fifth as
    much: this runs while the person who clicked "Send" waits.
    """
    validate_campaign_settings(settings)
    for index, recipient in enumerate(sample):
        try:
            if index == 0:
                build_campaign_message(settings, recipient)
            else:
                preview(settings, recipient)
        except TemplateError as error:
            raise TemplateError(
                error.part, error.line, f"{error.problem} (for subscriber {recipient.email})"
            ) from None
        except UserInputError as error:
            raise UserInputError(f"{error} (for subscriber {recipient.email})") from None


def render_batch(
    settings: CampaignSettings, campaign_id: int, recipients: Sequence[PendingRecipient]
) -> RenderedBatch:
    """Messages for a batch; a recipient whose message cannot be built is a failure with
    its reason (shown in the report), never a message with a hole in it."""
    queued: list[tuple[int, NewMessage]] = []
    failed: list[tuple[int, str]] = []
    skipped: list[tuple[int, str]] = []
    for pending in recipients:
        if pending.suppressed:
            skipped.append((pending.id, "on the suppression list"))
            continue
        try:
            message = build_campaign_message(settings, recipient_of(pending))
        except UserInputError as error:
            failed.append((pending.id, str(error)))
            continue
        queued.append((pending.id, dataclasses.replace(message, campaign_id=campaign_id)))
    return RenderedBatch(queued=queued, failed=failed, skipped=skipped)
