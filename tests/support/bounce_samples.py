"""Bounce messages as real MTAs write them, built by the tests (no captured mail is stored).

Each builder returns the raw bytes a bounce mailbox would hold for ``recipient`` and the
original message's ``message_id``. The formats follow what the MTAs produce:

- Postfix: multipart/report (RFC 3464) with a human part, message/delivery-status, and the
  returned headers as text/rfc822-headers.
- Exim: a plain-text "Mail delivery failed" message, the failed address indented, and the
  original quoted after "------ This is a copy of the message, including all the headers.".
- Exchange / Office 365: multipart/report with a text/html part and the whole original as
  message/rfc822, Status 5.1.10.
- Gmail: "Delivery Status Notification (Failure)", multipart/report with the original as
  message/rfc822.
- A delayed-delivery DSN (a soft bounce, Action: delayed, Status 4.4.1).
- Not bounces: an out-of-office auto-reply and an ordinary message.
"""

from __future__ import annotations

import email.policy
import uuid
from email.message import EmailMessage

SENDER = "news@example.com"
POLICY = email.policy.SMTP


def _id(domain: str) -> str:
    return f"<{uuid.uuid4().hex}@{domain}>"


def _original(recipient: str, message_id: str) -> str:
    return (
        f"From: Example News <{SENDER}>\r\nTo: {recipient}\r\nSubject: Spring newsletter\r\n"
        f"Message-ID: {message_id}\r\nDate: Sun, 29 Nov 2026 09:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
    )


def _report(
    *,
    from_: str,
    subject: str,
    human: str,
    status_fields: str,
    returned: str,
    bounce_id: str,
    returned_type: str = "text/rfc822-headers",
    html: bool = False,
) -> bytes:
    """A multipart/report written out as an MTA does (by hand: the email package will not
    serialize a message/delivery-status part it did not parse itself)."""
    boundary = f"=_{uuid.uuid4().hex}"
    parts = [
        f"Content-Type: text/plain; charset=us-ascii\r\n\r\n{human}",
        f"Content-Type: message/delivery-status\r\n\r\n{status_fields}",
        f"Content-Type: {returned_type}\r\n\r\n{returned}",
    ]
    if html:
        parts.insert(
            1,
            f"Content-Type: text/html; charset=us-ascii\r\n\r\n<html><body><p>{human}"
            "</p></body></html>\r\n",
        )
    head = (
        f"From: {from_}\r\nTo: {SENDER}\r\nSubject: {subject}\r\nMessage-ID: {bounce_id}\r\n"
        "Date: Sun, 29 Nov 2026 09:05:00 +0000\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status;\r\n"
        f'\tboundary="{boundary}"\r\n\r\nThis is a MIME-encapsulated message.\r\n\r\n'
    )
    body = "".join(f"--{boundary}\r\n{part}\r\n" for part in parts)
    return (head + body + f"--{boundary}--\r\n").encode("ascii")


def _as_rfc822(recipient: str, message_id: str) -> str:
    return _original(recipient, message_id) + "\r\nHello!\r\n"


def postfix(recipient: str, message_id: str) -> bytes:
    return _report(
        from_="MAILER-DAEMON@mx.example.net (Mail Delivery System)",
        subject="Undelivered Mail Returned to Sender",
        human=(
            "This is the mail system at host mx.example.net.\r\n\r\nI'm sorry to have to "
            "inform you that your message could not\r\nbe delivered to one or more "
            f"recipients.\r\n\r\n<{recipient}>: host mx.example.net said: 550 5.1.1 "
            "User unknown\r\n"
        ),
        status_fields=(
            "Reporting-MTA: dns; mx.example.net\r\nX-Postfix-Queue-ID: 4ABC123\r\n"
            "Arrival-Date: Sun, 29 Nov 2026 09:00:01 +0000\r\n\r\n"
            f"Final-Recipient: rfc822; {recipient}\r\nOriginal-Recipient: rfc822;{recipient}\r\n"
            "Action: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx.example.net\r\n"
            f"Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected: "
            "User unknown in local recipient table\r\n"
        ),
        returned=_original(recipient, message_id),
        bounce_id=_id("mx.example.net"),
    )


def exim(recipient: str, message_id: str) -> bytes:
    body = (
        "This message was created automatically by mail delivery software.\r\n\r\n"
        "A message that you sent could not be delivered to one or more of its\r\n"
        "recipients. This is a permanent error. The following address(es) failed:\r\n\r\n"
        f"  {recipient}\r\n    host mail.example.org [192.0.2.7]\r\n"
        "    SMTP error from remote mail server after RCPT TO:<"
        f"{recipient}>:\r\n    550 No Such User Here\r\n\r\n"
        "------ This is a copy of the message, including all the headers. ------\r\n\r\n"
        f"Return-path: <{SENDER}>\r\n" + _original(recipient, message_id) + "\r\nHello!\r\n"
    )
    message = EmailMessage(policy=POLICY)
    message["From"] = "Mail Delivery System <Mailer-Daemon@relay.example.org>"
    message["To"] = SENDER
    message["Subject"] = "Mail delivery failed: returning message to sender"
    message["Message-ID"] = _id("relay.example.org")
    message["Auto-Submitted"] = "auto-replied"
    message["X-Failed-Recipients"] = recipient
    message.set_content(body)
    return message.as_bytes()


def exchange(recipient: str, message_id: str) -> bytes:
    return _report(
        from_="postmaster@outlook.example.com",
        subject="Undeliverable: Spring newsletter",
        human=(
            "Delivery has failed to these recipients or groups:\r\n\r\n"
            f"{recipient}\r\nThe email address you entered couldn't be found. Please check "
            "the recipient's email address and try to resend the message.\r\n"
        ),
        status_fields=(
            "Reporting-MTA: dns;AM0PR01MB1234.eurprd01.prod.outlook.example.com\r\n"
            "Received-From-MTA: dns;mail.example.com\r\n\r\n"
            f"Final-Recipient: rfc822;{recipient}\r\nAction: failed\r\nStatus: 5.1.10\r\n"
            "Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient "
            "not found by SMTP address lookup\r\n"
        ),
        returned=_as_rfc822(recipient, message_id),
        returned_type="message/rfc822",
        bounce_id=_id("outlook.example.com"),
        html=True,
    )


def gmail(recipient: str, message_id: str) -> bytes:
    return _report(
        from_="Mail Delivery Subsystem <mailer-daemon@googlemail.example.com>",
        subject="Delivery Status Notification (Failure)",
        human=(
            f"** Address not found **\r\n\r\nYour message wasn't delivered to {recipient} "
            "because the address couldn't be found, or is unable to receive mail.\r\n"
        ),
        status_fields=(
            "Reporting-MTA: dns; googlemail.example.com\r\n"
            "Arrival-Date: Sun, 29 Nov 2026 01:00:00 -0800 (PST)\r\n\r\n"
            f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
            "Remote-MTA: dns; gmail-smtp-in.l.example.com. (192.0.2.27, the server for the "
            "domain.)\r\nDiagnostic-Code: smtp; 550-5.1.1 The email account that you tried "
            "to reach does not exist.\r\nLast-Attempt-Date: Sun, 29 Nov 2026 01:00:01 -0800\r\n"
        ),
        returned=_as_rfc822(recipient, message_id),
        returned_type="message/rfc822",
        bounce_id=_id("googlemail.example.com"),
    )


def delayed(recipient: str, message_id: str) -> bytes:
    return _report(
        from_="MAILER-DAEMON@mx.example.net (Mail Delivery System)",
        subject="Delayed Mail (still being retried)",
        human=(
            "This is the mail system at host mx.example.net.\r\n\r\n####################"
            "\r\n# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\r\n"
        ),
        status_fields=(
            "Reporting-MTA: dns; mx.example.net\r\n\r\n"
            f"Final-Recipient: rfc822; {recipient}\r\nAction: delayed\r\nStatus: 4.4.1\r\n"
            f"Diagnostic-Code: X-Postfix; connect to mail.example.org[192.0.2.9]:25: "
            "Connection timed out\r\nWill-Retry-Until: Thu, 3 Dec 2026 09:00:00 +0000\r\n"
        ),
        returned=_original(recipient, message_id),
        bounce_id=_id("mx.example.net"),
    )


def out_of_office(sender: str) -> bytes:
    message = EmailMessage(policy=POLICY)
    message["From"] = sender
    message["To"] = SENDER
    message["Subject"] = "Automatic reply: Spring newsletter"
    message["Message-ID"] = _id("example.org")
    message["Auto-Submitted"] = "auto-replied"
    message.set_content("I am out of the office until Monday and will read your mail then.\r\n")
    return message.as_bytes()


def ordinary(sender: str, subject: str = "Question about my order") -> bytes:
    message = EmailMessage(policy=POLICY)
    message["From"] = sender
    message["To"] = SENDER
    message["Subject"] = subject
    message["Message-ID"] = _id("example.org")
    message.set_content("Hello, could you tell me when my order ships? Thanks.\r\n")
    return message.as_bytes()


def unsubscribe_request(sender: str, campaign_key: str | None) -> bytes:
    message = EmailMessage(policy=POLICY)
    message["From"] = sender
    message["To"] = "unsubscribe@example.com"
    message["Subject"] = "unsubscribe" + (f" {campaign_key}" if campaign_key else "")
    message["Message-ID"] = _id("example.org")
    message.set_content("unsubscribe\r\n")
    return message.as_bytes()


HARD_FORMATS = {"postfix": postfix, "exim": exim, "exchange": exchange, "gmail": gmail}
