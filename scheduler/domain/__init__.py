"""The pure core: share lifecycle decisions, response plans, channel limits, retry policy.

Nothing here does I/O; ruff's banned-import rule (see ``ruff.toml`` here) keeps
psycopg, dramatiq, fastapi, httpx and structlog out.
"""
