"""Rotating API tokens: a new token works at once, the old one stops at its revocation."""

from __future__ import annotations

import psycopg
import pytest

from scheduler.errors import InvalidInputError, NotFoundError
from scheduler.services import token_admin, workspaces


def test_a_revoked_token_no_longer_authenticates_while_its_replacement_does(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        # Given a workspace's old token and the new one that replaces it
        old = workspaces.create_token(conn, "acme", "write", label="ci 2026")
        new = workspaces.create_token(conn, "acme", "write", label="ci 2027")
        [old_info, new_info] = token_admin.list_tokens(conn, "acme")
        assert (old_info.label, new_info.label) == ("ci 2026", "ci 2027")
        # When the old one is revoked by its id, and again by the token itself
        revoked = token_admin.revoke(conn, str(old_info.id))
        again = token_admin.revoke(conn, old)
        # Then it is refused, the first revocation time stays, and the new one still works
        assert workspaces.authenticate(conn, old) is None
        assert again.revoked_at == revoked.revoked_at is not None
        assert workspaces.authenticate(conn, new) is not None
        assert [t.revoked_at is None for t in token_admin.list_tokens(conn, "acme")] == [False, True]


def test_revoking_an_unknown_or_malformed_token_says_which(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        with pytest.raises(NotFoundError):
            token_admin.revoke(conn, "00000000-0000-0000-0000-000000000000")
        with pytest.raises(InvalidInputError, match="token id"):
            token_admin.revoke(conn, "not-a-token")
