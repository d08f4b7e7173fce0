//! The system of record: sqlx over SQLite (embedded default) or PostgreSQL.
