"""Jinja filters: how rates, durations and times read on the dashboard (``scheduler.api.figures``),
and the replies page's cards (``cards``)."""

from __future__ import annotations

from jinja2 import Environment

from scheduler.api.dashboard.cards import reply_cards
from scheduler.api.dashboard.desk import linkify
from scheduler.api.figures import millis, percent, seconds, when


def install(env: Environment) -> None:
    env.filters.update(percent=percent, seconds=seconds, millis=millis, when=when, linkify=linkify,
                       reply_cards=reply_cards)
