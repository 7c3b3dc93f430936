"""Alembic revision files; alembic itself ignores this module."""
