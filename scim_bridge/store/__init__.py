"""SQLAlchemy Core tables and the engine: SQLite by default, PostgreSQL with DATABASE_URL."""
