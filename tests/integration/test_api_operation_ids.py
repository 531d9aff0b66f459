"""The OpenAPI operation ids are named by intent and stable: a generated client calls
``plan_share`` and ``cancel_share``, not ``cancel_share_v1_shares_share_id_cancel_post``.
Changing or dropping one breaks every generated client: this list is the contract."""

from __future__ import annotations

from fastapi.routing import APIRoute

from followthrough import bootstrap
from followthrough.settings import Settings

OPERATION_IDS = {
    ("get", "/v1/accounts"): "list_accounts",
    ("post", "/v1/accounts"): "create_account",
    ("get", "/v1/accounts/{account_id}"): "get_account",
    ("get", "/v1/accounts/{account_id}/slots"): "list_account_slots",
    ("post", "/v1/shares"): "plan_share",
    ("get", "/v1/shares"): "list_shares",
    ("post", "/v1/posts"): "plan_post",
    ("get", "/v1/posts/{post_id}"): "get_post",
    ("get", "/v1/shares/{share_id}"): "get_share",
    ("get", "/v1/shares/{share_id}/events"): "list_share_events",
    ("post", "/v1/media"): "upload_media",
    ("get", "/v1/media"): "list_media",
    ("get", "/v1/media/{media_id}"): "get_media",
    ("get", "/v1/media/{media_id}/content"): "get_media_content",
    ("patch", "/v1/media/{media_id}"): "change_media",
    ("delete", "/v1/media/{media_id}"): "delete_media",
    ("post", "/v1/shares/{share_id}/approve"): "approve_share",
    ("post", "/v1/shares/{share_id}/reject"): "reject_share",
    ("post", "/v1/shares/{share_id}/reschedule"): "reschedule_share",
    ("post", "/v1/shares/{share_id}/retry"): "retry_share",
    ("post", "/v1/shares/{share_id}/mark-sent"): "mark_share_sent",
    ("post", "/v1/shares/{share_id}/cancel"): "cancel_share",
    ("get", "/v1/response-tasks"): "list_tasks",
    ("post", "/v1/response-tasks/{task_id}/complete"): "complete_task",
    ("get", "/v1/replies"): "list_replies",
    ("post", "/v1/replies/{reply_id}/answer"): "answer_reply",
    ("post", "/v1/replies/{reply_id}/dismiss"): "dismiss_reply",
    ("post", "/v1/replies/{reply_id}/assign"): "assign_reply",
    ("post", "/v1/saved-replies"): "create_saved_reply",
    ("get", "/v1/saved-replies"): "list_saved_replies",
    ("delete", "/v1/saved-replies/{saved_reply_id}"): "delete_saved_reply",
    ("get", "/v1/calendars"): "list_calendars",
    ("get", "/v1/calendar"): "get_share_calendar",
    ("put", "/v1/calendars/{name}"): "set_calendar",
    ("get", "/v1/calendars/{name}"): "get_calendar",
    ("delete", "/v1/calendars/{name}"): "delete_calendar",
    ("get", "/v1/owners"): "list_owners",
    ("put", "/v1/owners/{owner}"): "set_owner_calendar",
    ("get", "/v1/webhooks"): "list_webhooks",
    ("post", "/v1/webhooks"): "register_webhook",
    ("get", "/v1/webhooks/{endpoint_id}"): "get_webhook",
    ("delete", "/v1/webhooks/{endpoint_id}"): "delete_webhook",
    ("post", "/v1/webhooks/{endpoint_id}/enable"): "enable_webhook",
    ("get", "/v1/webhooks/{endpoint_id}/deliveries"): "list_webhook_deliveries",
    ("post", "/v1/tokens"): "create_token",
    ("get", "/v1/tokens"): "list_tokens",
    ("delete", "/v1/tokens/{token_id}"): "revoke_token",
    ("get", "/v1/audit"): "get_audit",
    ("get", "/v1/followthrough"): "get_followthrough",
    ("get", "/healthz"): "check_health",
    ("get", "/readyz"): "check_readiness",
}


def test_every_operation_has_its_chosen_id_and_none_is_missing_or_changed(settings: Settings) -> None:
    # Given the API as the `api` role builds it
    app = bootstrap.build_api(settings)
    # When its OpenAPI document is generated
    paths = app.openapi()["paths"]
    found = {(method, path): operation.get("operationId") for path, item in paths.items()
             for method, operation in item.items()}
    # Then every operation carries exactly the id chosen for it (no operation added without one)
    assert found == OPERATION_IDS
    # And each is unique and set on its route by hand, not derived by FastAPI from the path
    assert len(set(found.values())) == len(found)
    documented = [r for r in app.routes if isinstance(r, APIRoute) and r.include_in_schema]
    assert all(r.operation_id for r in documented), [r.path for r in documented if not r.operation_id]
