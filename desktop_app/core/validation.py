"""Checks on what users type, done before anything is stored or queued.

Every failure is a ``UserInputError`` with one line that names the field and the problem.
CR, LF and NUL are refused everywhere they could reach a header or an SMTP command line.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import replace
from email.errors import HeaderParseError
from email.headerregistry import Address

from desktop_app.core.errors import HeaderInjectionError, UserInputError
from desktop_app.core.models import ProviderConfig, Security

# CR, LF and NUL, plus every other character str.splitlines() breaks on (VT, FF, FS, GS,
# RS, NEL, U+2028, U+2029): the email package refuses those in a header with a bare
# ValueError, and a raw FF or NEL in a header is a line break to some readers.
_FORBIDDEN = re.compile(r"[\r\n\x00\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_NAME = re.compile(r"^[\w][\w .@+()-]{0,99}$")


def check_no_line_breaks(field: str, value: str) -> str:
    """Refuse CR, LF and NUL: they would let a value inject headers or SMTP commands."""
    if _FORBIDDEN.search(value):
        raise HeaderInjectionError(f"{field} must not contain line breaks or NUL characters")
    return value


def nul_position(value: str) -> tuple[int, int] | None:
    """Line and column (counted from 1) of the first NUL character in ``value``, or None."""
    index = value.find("\x00")
    if index < 0:
        return None
    return value.count("\n", 0, index) + 1, index - value.rfind("\n", 0, index)


def check_no_nul(part: str, value: str) -> str:
    """Refuse NUL in a message body ("text body", "HTML body").

    RFC 5322 (section 2.3) allows NUL nowhere in a message and RFC 2045 not in 7bit or 8bit
    data, yet the email package writes an ASCII body with one out raw under
    ``Content-Transfer-Encoding: 7bit``; servers drop or truncate such mail. Other controls
    (TAB, FF, ESC...) are legal and kept; bare CR and LF become CRLF when the part is built.
    """
    where = nul_position(value)
    if where is not None:
        line, column = where
        raise UserInputError(
            f"the {part} contains a NUL character (line {line}, column {column}); "
            "mail cannot carry NUL"
        )
    return value


def validate_domain(field: str, value: str) -> str:
    """A DNS name such as ``example.com``; returned lower-cased."""
    check_no_line_breaks(field, value)
    domain = value.strip().rstrip(".").lower()
    labels = domain.split(".")
    if not domain or len(domain) > 253 or not all(_LABEL.match(label) for label in labels):
        raise UserInputError(f"{field}: {value!r} is not a valid domain name")
    return domain


def validate_host(value: str) -> str:
    """An SMTP host: a DNS name or an IP address."""
    check_no_line_breaks("host", value)
    host = value.strip()
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        pass
    return validate_domain("host", host)


def is_loopback(host: str) -> bool:
    """Whether traffic to ``host`` never leaves this machine."""
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def validate_port(value: int | str) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise UserInputError(f"port must be a number from 1 to 65535, not {value!r}") from None
    if not 1 <= port <= 65535:
        raise UserInputError(f"port must be from 1 to 65535, not {port}")
    return port


def validate_address(field: str, value: str) -> str:
    """An email address (addr-spec, ``user@example.com``); display names are refused here."""
    check_no_line_breaks(field, value)
    text = value.strip()
    try:
        address = Address(addr_spec=text)
    except (HeaderParseError, ValueError, IndexError):
        raise UserInputError(f"{field}: {value!r} is not an email address") from None
    if not address.username or not address.domain or address.addr_spec != text:
        raise UserInputError(f"{field}: {value!r} is not an email address")
    if not address.domain.startswith("["):
        validate_domain(field, address.domain)
    return text


def validate_provider_name(value: str) -> str:
    """Provider names are short labels people and scripts type: letters, digits, ``.-_+@ ``."""
    check_no_line_breaks("provider name", value)
    name = value.strip()
    if not _NAME.match(name):
        raise UserInputError(
            f"provider name {value!r} must be 1-100 letters, digits, spaces or .-_+@()"
        )
    return name


def validate_positive(field: str, value: int | None, *, allow_none: bool = True) -> int | None:
    if value is None:
        if allow_none:
            return None
        raise UserInputError(f"{field} is required")
    if value < 1:
        raise UserInputError(f"{field} must be at least 1, not {value}")
    return value


def validate_provider_config(config: ProviderConfig) -> ProviderConfig:
    """A normalized copy of ``config``, or a ``UserInputError`` naming the first bad field."""
    host = validate_host(config.host)
    security = Security(config.security)
    if security is Security.NONE and not is_loopback(host) and not config.allow_insecure:
        raise UserInputError(
            f"security 'none' sends mail and passwords in clear to {host}; use tls or "
            "starttls, or pass --allow-insecure if you really mean it"
        )
    if config.username is not None:
        check_no_line_breaks("username", config.username)
    if config.priority < 0:
        raise UserInputError(f"priority must be 0 or more, not {config.priority}")
    validate_positive("weight", config.weight, allow_none=False)
    if not 1 <= config.max_connections <= 100:
        raise UserInputError(f"max connections must be from 1 to 100, not {config.max_connections}")
    limits = config.rate_limits
    for field_name in ("per_second", "per_minute", "per_hour", "per_day"):
        validate_positive(f"rate {field_name.replace('_', ' ')}", getattr(limits, field_name))
    domains = tuple(
        dict.fromkeys(validate_domain("sender domain", d) for d in config.sender_domains)
    )
    return replace(
        config,
        name=validate_provider_name(config.name),
        host=host,
        port=validate_port(config.port),
        security=security,
        username=config.username.strip() if config.username else None,
        sender_domains=domains,
    )
