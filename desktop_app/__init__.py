"""Relaydesk: email campaigns through several SMTP providers, with failover and a durable outbox."""

__version__ = "0.1.0"
