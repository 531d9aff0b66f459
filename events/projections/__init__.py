"""The read side: every relation derived from the log, the runner that keeps it, and
every query that reads it. These relations are a documented read API (dashboards
and BI tools read them as the ``followthrough_reader`` role).

| relation | kind | kept by | defined in |
|---|---|---|---|
| ``projection_checkpoints`` | table | each runner, in the batch's transaction | migration 0003 |
| ``rm_shares`` | table | ``shares.SharesProjection`` | migration 0003 |
| ``rm_response_tasks`` | table | ``shares.SharesProjection`` | migration 0003 |
| ``rm_replies`` | table: the replies inbox | ``shares.SharesProjection`` | migration 0009 |
| ``response_inbox`` | view over ``rm_response_tasks`` (open / overdue by now) | — | migration 0003 |
| ``followthrough_daily`` | view: follow-through by workspace, account, owner, day | — | migration 0003 |
| ``integrity`` | view: sent shares without response tasks (must be 0) | — | migration 0003 |
| ``schedule`` | table, an *inline* projection (written with the events) | ``services.share_stream`` | 0002 |
| ``reply_looks`` | table: every look at a thread, an event or not (not a projection) | ``services.looks`` | 0015 |
| ``webhook_deliveries`` | table: the webhook outbox, a row per (endpoint, event) | ``webhooks`` (+ sweep) | 0008 |
| ``webhook_endpoints``, ``webhook_attempts`` | tables: endpoints, attempts | scheduler's services | 0008 |

Rebuilds: ``rebuild`` fills fresh tables from the whole log and swaps them in (one
transaction; the views are rebound, the privileges copied), split by stream over
processes by ``partitions`` when the model allows it.

One model per read model: ``shares_fold`` (with ``replies_fold``) is the shares model as a
pure fold (``rm_shares``, ``rm_replies``, ``rm_response_tasks``); the live projector folds
each batch over the rows it touches and the rebuild folds the whole log, both reading and
writing rows in bulk through ``share_rows``.

Queries: ``replies`` (the inbox page, reply figures), ``reports`` (follow-through, inbox,
share lists, integrity; used by the API and the CLI), ``timeline`` (the dashboard's share
timeline and per-workspace health), ``planner`` (the shares calendar: shares by scheduled
time) and ``metrics`` (operators' figures for Prometheus,
follow-through per workspace included). Their SQL sits in ``sql/``.
"""
