"""One campaign message per recipient: rendered templates turned into outbox-ready bytes.

Everything here is deterministic except the Date header: the Message-ID comes from the
campaign key and the recipient, so rebuilding a campaign (after a crash, or a resume) makes
the same IDs, and duplicate detection downstream still works. The bytes use the wire policy
and the line-break checks of ``core/compose.py``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from desktop_app.core.campaigns.csv_import import MAX_NAME_CHARS
from desktop_app.core.campaigns.templates import (
    RenderedContent,
    TemplateSet,
    compile_templates,
    template_context,
)
from desktop_app.core.compose import WIRE_POLICY
from desktop_app.core.errors import UserInputError
from desktop_app.core.models import ProviderConfig
from desktop_app.core.storage.outbox import NewMessage
from desktop_app.core.validation import check_no_line_breaks, validate_address

DEFAULT_MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
MAX_UNSUBSCRIBE_URL_LENGTH = 700  # leaves room for the token under the 998-octet line limit

# Header objects are always refolded by the wire policy; only List-Unsubscribe is stored as
# a raw string (set_raw), and "none" makes the generator keep its folding as written.
_SERIALIZE_POLICY = WIRE_POLICY.clone(refold_source="none")

# RFC 5322 field-name: printable US-ASCII except ":" (section 3.6.8).
_HEADER_NAME = re.compile(r"^[\x21-\x39\x3b-\x7e]{1,76}$")
# Headers the builder owns: a custom header must not override or duplicate them.
_STRUCTURAL_HEADERS = frozenset(
    name.lower()
    for name in (
        "From",
        "Sender",
        "To",
        "Cc",
        "Bcc",
        "Reply-To",
        "Subject",
        "Date",
        "Message-ID",
        "In-Reply-To",
        "References",
        "MIME-Version",
        "Return-Path",
        "Received",
        "DKIM-Signature",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "Content-Transfer-Encoding",
    )
)
# Characters that would end or split an entry of the List-Unsubscribe <...> list.
_URL_BREAKERS = re.compile(r"[\s<>,\"]")


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file attached to every message of a campaign."""

    filename: str
    content: bytes
    content_type: str = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class Recipient:
    """One subscriber as the message builder needs it."""

    email: str
    name: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CampaignSettings:
    """Everything about a campaign's messages that is the same for every recipient.

    ``campaign_key`` is a stable identifier of the campaign (its database id or uuid), not a
    display name that can be edited. ``unsubscribe_secret`` signs the per-recipient token of
    the https unsubscribe URL; it is required when ``unsubscribe_url`` is set.
    """

    campaign_key: str
    from_address: str
    templates: TemplateSet
    from_name: str | None = None
    reply_to: str | None = None
    unsubscribe_mailto: str | None = None
    unsubscribe_url: str | None = None
    unsubscribe_secret: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()
    max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES


# -- public functions ---------------------------------------------------------------------


def campaign_message_id(campaign_key: str, recipient: str, from_address: str) -> str:
    """``<hash@from-domain>``: the same for the same (campaign, recipient), unique otherwise."""
    digest = hashlib.sha256(f"{campaign_key}\0{recipient.lower()}".encode()).hexdigest()[:40]
    domain = from_address.rpartition("@")[2].strip("[]").lower()
    return f"<campaign.{digest}@{domain}>"


def unsubscribe_token(secret: bytes, campaign_key: str, address: str) -> str:
    """HMAC-SHA256 of campaign and address, URL-safe: proves a link came from us."""
    mac = hmac.new(secret, f"{campaign_key}\0{address.lower()}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode("ascii")


def verify_unsubscribe_token(secret: bytes, campaign_key: str, address: str, token: str) -> bool:
    """Whether ``token`` is the one :func:`unsubscribe_token` made (constant-time compare)."""
    return hmac.compare_digest(unsubscribe_token(secret, campaign_key, address), token)


def recipient_unsubscribe_url(settings: CampaignSettings, address: str) -> str | None:
    """The https one-click URL for ``address``: the base URL plus ``campaign``, ``email``
    and ``token`` query parameters (the token is what the endpoint must verify)."""
    if settings.unsubscribe_url is None:
        return None
    if settings.unsubscribe_secret is None or not settings.unsubscribe_secret:
        raise UserInputError("an unsubscribe URL needs a secret key to sign its tokens")
    base = urlsplit(settings.unsubscribe_url)
    query = parse_qsl(base.query, keep_blank_values=True)
    query += [
        ("campaign", settings.campaign_key),
        ("email", address),
        ("token", unsubscribe_token(settings.unsubscribe_secret, settings.campaign_key, address)),
    ]
    return urlunsplit(base._replace(query=urlencode(query)))


def validate_campaign_settings(settings: CampaignSettings) -> None:
    """Check what does not depend on a recipient; raises a one-line ``UserInputError``."""
    validate_address("from", settings.from_address)
    if settings.from_name is not None:
        _check_display_name("from name", settings.from_name)
    if settings.reply_to is not None:
        validate_address("reply-to", settings.reply_to)
    if settings.unsubscribe_mailto is not None:
        validate_address("unsubscribe mailto", settings.unsubscribe_mailto)
    if settings.unsubscribe_url is not None:
        _validate_unsubscribe_url(settings.unsubscribe_url)
        if not settings.unsubscribe_secret:
            raise UserInputError("an unsubscribe URL needs a secret key to sign its tokens")
    validate_custom_headers(settings.headers)
    _check_attachments(settings.attachments, settings.max_attachment_bytes)
    compile_templates(settings.templates)


def validate_custom_headers(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """Names as RFC 5322 field names, no line breaks in values, no structural headers."""
    seen: set[str] = set()
    checked = []
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            raise UserInputError(f"custom header name {name!r} is not a valid header name")
        lowered = name.lower()
        if lowered in _STRUCTURAL_HEADERS or lowered.startswith("content-"):
            raise UserInputError(f"custom header {name!r} would override a header Relaydesk sets")
        if lowered in seen:
            raise UserInputError(f"custom header {name!r} is given twice")
        seen.add(lowered)
        if not isinstance(value, str):
            raise UserInputError(f"custom header {name!r} must have a text value")
        check_no_line_breaks(f"custom header {name!r}", value)
        if len(value) > 900:
            raise UserInputError(f"custom header {name!r} is longer than 900 characters")
        checked.append((name, value))
    return checked


def parse_header_lines(lines: Iterable[str], *, label: Callable[[int, str], str]) -> dict[str, str]:
    """``Name: value`` lines (the composer's box, ``--header``) to headers, in their order.

    A name given twice is refused here, where the lines are still apart: a dict would keep
    the last one silently. ``label(number, line)`` says where a bad line came from. Names
    and values are checked further by :func:`validate_custom_headers`.
    """
    headers: dict[str, str] = {}
    seen: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not name:
            raise UserInputError(f"{label(number, line)}: write it as 'Name: value'")
        if name.lower() in seen:
            raise UserInputError(f"custom header {seen[name.lower()]!r} is given twice")
        seen[name.lower()] = name
        headers[name] = value.strip()
    return headers


def build_campaign_message(
    settings: CampaignSettings, recipient: Recipient, *, now: float | None = None
) -> NewMessage:
    """The message for one recipient, or a one-line ``UserInputError`` (``TemplateError``
    for a template problem)."""
    validate_campaign_settings(settings)
    return _build(settings, recipient, now=now)


def build_campaign_messages(
    settings: CampaignSettings, recipients: Iterable[Recipient], *, now: float | None = None
) -> list[NewMessage]:
    """Messages for many recipients; the settings are checked once. The first failure
    raises (callers that want to skip bad rows call :func:`build_campaign_message`)."""
    validate_campaign_settings(settings)
    return [_build(settings, recipient, now=now) for recipient in recipients]


def sender_alignment_warnings(from_domain: str, providers: Sequence[ProviderConfig]) -> list[str]:
    """One warning per enabled provider of the route that is not authorized for
    ``from_domain``: failing over to it would send mail that breaks DMARC alignment."""
    warnings = [
        f"provider {provider.name!r} is not authorized for {from_domain}: failing over to "
        "it would break DMARC alignment (SPF/DKIM would not match the From domain)"
        for provider in providers
        if provider.enabled and not provider.authorizes(from_domain)
    ]
    enabled = [provider for provider in providers if provider.enabled]
    if enabled and len(warnings) == len(enabled):
        warnings.append(f"no provider in the route is authorized for {from_domain}")
    return warnings


# -- building -----------------------------------------------------------------------------


def _build(settings: CampaignSettings, recipient: Recipient, *, now: float | None) -> NewMessage:
    address = validate_address("recipient", recipient.email)
    unsubscribe_url = recipient_unsubscribe_url(settings, address)
    context = template_context(
        email=address,
        name=recipient.name,
        fields=recipient.fields,
        unsubscribe_url=unsubscribe_url
        or _mailto_url(settings.unsubscribe_mailto, settings.campaign_key),
    )
    content = compile_templates(settings.templates).render(context)
    message_id = campaign_message_id(settings.campaign_key, address, settings.from_address)
    message = EmailMessage(policy=WIRE_POLICY)
    _set_header(message, "From", _address_header("from", settings.from_address, settings.from_name))
    _set_header(message, "To", _address_header("to", address, recipient.name))
    if settings.reply_to is not None:
        _set_header(message, "Reply-To", settings.reply_to)
    _set_header(message, "Subject", content.subject)
    message["Date"] = format_datetime(
        datetime.fromtimestamp(time.time() if now is None else now, UTC)
    )
    message["Message-ID"] = message_id
    unsubscribe = _list_unsubscribe(
        settings.unsubscribe_mailto, unsubscribe_url, settings.campaign_key
    )
    if unsubscribe:
        # Stored pre-folded and written as is (_SERIALIZE_POLICY): the email package would
        # otherwise turn a URL longer than a line into RFC 2047 encoded words, which no
        # mail client reads back as a URL.
        message.set_raw("List-Unsubscribe", unsubscribe)
        if unsubscribe_url is not None:
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    for name, value in validate_custom_headers(settings.headers):
        _set_header(message, name, value)
    _set_body(message, content)
    for attachment in settings.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        message.add_attachment(
            attachment.content, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    return NewMessage(
        message_id=message_id,
        envelope_from=settings.from_address,
        recipients=(address,),
        subject=content.subject,
        raw=message.as_bytes(policy=_SERIALIZE_POLICY),
    )


def _set_body(message: EmailMessage, content: RenderedContent) -> None:
    message.set_content(content.text)
    if content.html is not None:
        message.add_alternative(content.html, subtype="html")


def _set_header(message: EmailMessage, name: str, value: str | Address) -> None:
    """Set a header, then check what the email package actually stored: it decodes RFC 2047
    encoded words on assignment, so ``=?utf-8?q?=0D=0A?=`` would become a line break."""
    check_no_line_breaks(name, str(value))
    try:
        message[name] = value
    except (HeaderParseError, ValueError, IndexError, TypeError) as error:
        raise UserInputError(f"header {name}: {value!s:.80} is not acceptable ({error})") from None
    check_no_line_breaks(name, str(message[name]))


def _check_display_name(field_name: str, display_name: str) -> None:
    """No line breaks, and no longer than a stored subscriber's name.

    The email package writes a display name with no space in it on one header line, however
    long: a 1,000-character one made a 1,001-octet line, over RFC 5322's 998. A name of at
    most ``MAX_NAME_CHARS`` (200), quoted and escaped, stays far below.
    """
    check_no_line_breaks(field_name, display_name)
    if len(display_name) > MAX_NAME_CHARS:
        raise UserInputError(f"{field_name} is longer than {MAX_NAME_CHARS} characters")


def _address_header(field_name: str, address: str, display_name: str | None) -> Address:
    if display_name is not None:
        _check_display_name(f"{field_name} name", display_name)
    try:
        return Address(display_name=(display_name or "").strip(), addr_spec=address)
    except (HeaderParseError, ValueError, IndexError) as error:
        raise UserInputError(f"{field_name}: {address!r} is not acceptable ({error})") from None


def _mailto_url(address: str | None, campaign_key: str) -> str | None:
    """The mailto entry; its subject names the campaign so the unsubscribe mailbox reader
    (bounces/reading.py) can tell the campaign's report who left because of it."""
    if address is None:
        return None
    return f"mailto:{quote(address, safe='@')}?subject=unsubscribe%20{quote(campaign_key)}"


def _list_unsubscribe(mailto: str | None, url: str | None, campaign_key: str) -> str:
    # RFC 2369: a comma-separated list of <URI>; the https URI first so that one-click
    # readers (RFC 8058) find it before falling back to mail.
    entries = [f"<{uri}>" for uri in (url, _mailto_url(mailto, campaign_key)) if uri is not None]
    return ",\r\n ".join(entries)


def _validate_unsubscribe_url(url: str) -> None:
    check_no_line_breaks("unsubscribe URL", url)
    if len(url) > MAX_UNSUBSCRIBE_URL_LENGTH:
        raise UserInputError(
            f"unsubscribe URL is longer than {MAX_UNSUBSCRIBE_URL_LENGTH} characters"
        )
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise UserInputError(f"unsubscribe URL {url!r} must be an https:// URL (RFC 8058)")
    if _URL_BREAKERS.search(url) or not url.isascii():
        raise UserInputError(
            f"unsubscribe URL {url!r} must not contain spaces, quotes, commas, < or >, "
            "or non-ASCII characters (percent-encode them)"
        )


def _check_attachments(attachments: Sequence[Attachment], limit: int) -> None:
    total = 0
    for attachment in attachments:
        check_no_line_breaks("attachment filename", attachment.filename)
        if not attachment.filename.strip():
            raise UserInputError("an attachment needs a file name")
        maintype, slash, subtype = attachment.content_type.partition("/")
        token = re.compile(r"^[A-Za-z0-9!#$&^_.+-]{1,64}$")
        if not slash or not token.match(maintype) or not token.match(subtype):
            raise UserInputError(
                f"attachment {attachment.filename!r}: {attachment.content_type!r} "
                "is not a MIME type"
            )
        total += len(attachment.content)
    if total > limit:
        raise UserInputError(
            f"attachments total {_size(total)}, over the {_size(limit)} limit per message"
        )


def _size(count: int) -> str:
    return f"{count / (1024 * 1024):.1f} MB" if count >= 1024 * 1024 else f"{count} bytes"
