"""The database: engines and sessions, Alembic migrations, and the microsecond timestamps stored."""
