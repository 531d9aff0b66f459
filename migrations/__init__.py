"""Alembic migrations of Followthrough's schema (plain SQL revisions)."""

# The newest revision. Roles compare the database against it at start-up without
# loading Alembic; a test keeps it equal to Alembic's own head.
HEAD = "0029_events_posts_idx"
