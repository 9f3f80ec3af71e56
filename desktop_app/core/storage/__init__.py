"""Durable state: the SQLite (or, later, PostgreSQL) database behind the outbox and providers."""
