"""Persistence: the database pool, engines, migrations and the stores (the only SQL)."""
