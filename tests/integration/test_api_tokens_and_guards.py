"""Tokens through the API, rate limits, /metrics, secrets in account config, and a 500
logged once with the request id the client got."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import structlog

from followthrough import bootstrap, roles
from followthrough.settings import Settings
from tests.support.api import api_client, assert_problem, bearer
from tests.support.database import connect
from tests.support.servers import serve


def test_a_token_made_through_the_api_is_shown_once_listed_without_it_and_revocable(
    client: httpx.Client, database_url: str
) -> None:
    # Given a write token
    admin = bearer(database_url)
    # When it creates a read token with an expiry
    expires = (datetime.now(UTC) + timedelta(days=7)).isoformat()
    created = client.post("/v1/tokens", headers=admin, json={"scope": "read", "label": "dash", "expires_at": expires})
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    reader = {"Authorization": f"Bearer {token}"}
    # Then the new token reads, and its use is recorded
    assert client.get("/v1/accounts", headers=reader).status_code == 200
    listed = client.get("/v1/tokens", headers=admin)
    assert listed.status_code == 200
    assert token not in listed.text
    mine = next(t for t in listed.json()["tokens"] if t["id"] == created.json()["id"])
    assert mine["label"] == "dash"
    assert mine["expires_at"] is not None
    assert mine["last_used_at"] is not None
    # And a read token may not manage tokens
    assert client.get("/v1/tokens", headers=reader).status_code == 403
    # When it is revoked
    assert client.delete(f"/v1/tokens/{mine['id']}", headers=admin).status_code == 204
    # Then it no longer authenticates
    assert_problem(client.get("/v1/accounts", headers=reader), 401, None)


def test_an_expired_token_does_not_authenticate(client: httpx.Client, database_url: str) -> None:
    admin = bearer(database_url)
    created = client.post("/v1/tokens", headers=admin, json={
        "scope": "read", "expires_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()}).json()
    with connect(database_url) as conn:
        conn.execute("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = %s",
                     (created["id"],))
    assert client.get("/v1/accounts", headers={"Authorization": f"Bearer {created['token']}"}).status_code == 401


def test_another_workspace_cannot_see_or_revoke_a_token(client: httpx.Client, database_url: str) -> None:
    ours, theirs = bearer(database_url, "acme"), bearer(database_url, "globex")
    created = client.post("/v1/tokens", headers=ours, json={"scope": "read"}).json()
    assert created["id"] not in client.get("/v1/tokens", headers=theirs).text
    assert_problem(client.delete(f"/v1/tokens/{created['id']}", headers=theirs), 404, None)


def test_secret_looking_config_values_are_not_shown_to_readers(client: httpx.Client, database_url: str) -> None:
    # Given an account stored before secrets were checked at any depth
    auth = bearer(database_url)
    account = client.post("/v1/accounts", headers=auth, json={"name": "m", "channel": "console"}).json()
    with connect(database_url) as conn:
        conn.execute("""UPDATE accounts SET config = '{"auth": {"token": "s3cret"}, "visibility": "public"}'""")
    # When it is read
    shown = client.get(f"/v1/accounts/{account['id']}", headers=auth).json()
    # Then the secret is not in the answer, the rest is
    assert shown["config"] == {"auth": {"token": "[redacted]"}, "visibility": "public"}
    assert "s3cret" not in client.get("/v1/accounts", headers=auth).text


def test_too_many_requests_get_429_with_retry_after(settings: Settings, database_url: str) -> None:
    # Given a limit of 3 requests a minute per token
    limited = settings.model_copy(update={"rate_limit_per_token": "3/minute"})
    auth = bearer(database_url)
    with api_client(limited) as client:
        # When a 4th request comes within the minute
        answers = [client.get("/v1/accounts", headers=auth) for _ in range(4)]
    # Then it is refused with a problem and a Retry-After
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert_problem(answers[-1], 429, None)
    assert 1 <= int(answers[-1].headers["retry-after"]) <= 60


def test_metrics_count_requests_per_route_and_need_the_metrics_token(settings: Settings, database_url: str) -> None:
    # Given a metrics token
    guarded = settings.model_copy(update={"metrics_token": "m-secret-123"})
    auth = bearer(database_url)
    with api_client(guarded) as client:
        client.get("/v1/accounts", headers=auth)
        # When /metrics is asked without it, or with a workspace token
        assert client.get("/metrics").status_code == 404
        assert client.get("/metrics", headers=auth).status_code == 404
        # Then only the metrics token opens it, with counters per route template
        text = client.get("/metrics", headers={"Authorization": "Bearer m-secret-123"}).text
    assert 'followthrough_http_requests_total{method="GET",route="/v1/accounts",status="200"} 1.0' in text
    assert 'followthrough_http_request_duration_seconds_count{method="GET",route="/v1/accounts"} 1.0' in text
    assert 'followthrough_http_workspace_requests_total{status_class="2xx",workspace="acme"} 1.0' in text


def test_an_unexpected_error_is_a_500_problem_logged_once_with_the_request_id(settings: Settings) -> None:
    # Given a route that fails unexpectedly
    app = bootstrap.build_api(settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("kaput")

    # (Logs captured until the server has stopped: its access line is written after the answer.)
    with structlog.testing.capture_logs() as logs, serve(app, **bootstrap.API_SERVER_OPTIONS) as base:
        # When it is called
        response = httpx.get(f"{base}/boom", headers={"X-Request-ID": "req-000000001"})
    # Then the client gets a problem carrying the request id, and one log line has it
    assert_problem(response, 500, None)
    assert response.headers["x-request-id"] == "req-000000001"
    assert "req-000000001" in response.json()["detail"]
    failures = [e for e in logs if e["event"] == "request_failed"]
    assert len(failures) == 1
    assert failures[0]["request_id"] == "req-000000001"
    access = [e for e in logs if e["event"] == "http_request"]
    assert [(e["route"], e["status"]) for e in access] == [("/boom", 500)]


def test_the_default_token_file_is_private_from_the_moment_it_exists(tmp_path: Path) -> None:
    # Given a permissive umask and an old world-readable file in the way
    path = tmp_path / "default-write-token"
    path.write_text("old\n")
    path.chmod(0o644)
    previous = os.umask(0)
    try:
        # When the token is written
        roles.write_private(path, "ft_new\n")
    finally:
        os.umask(previous)
    # Then only its owner can read it, and it holds the new token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "ft_new\n"


def test_a_constraint_the_api_does_not_know_is_a_4xx_and_its_row_is_not_logged(
    client: httpx.Client, database_url: str
) -> None:
    # Given a database rule the API does not check itself
    with connect(database_url) as conn:
        conn.execute("ALTER TABLE accounts ADD CONSTRAINT test_no_region CHECK (NOT config ? 'region')")
    auth = bearer(database_url)
    with structlog.testing.capture_logs() as logs:
        # When an account breaks it
        response = client.post("/v1/accounts", headers=auth, json={
            "name": "m", "channel": "console", "config": {"region": "eu-private-value"}})
    # Then the client gets a 4xx problem, and no log line holds the row's config
    assert_problem(response, 422, "body")
    assert "eu-private-value" not in repr(logs)
    answered = [e for e in logs if e["event"] == "database_error_answered"]
    assert [e["constraint"] for e in answered] == ["test_no_region"]
