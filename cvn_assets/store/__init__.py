"""The results database (SQLAlchemy Core): tables, engine and migrations, partition writes, audits, reports."""
