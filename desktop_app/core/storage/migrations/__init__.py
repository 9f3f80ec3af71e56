"""Alembic migrations, applied automatically when a database is opened (database.py)."""
