"""Alembic migrations of the app records (a package so that wheels ship them)."""
