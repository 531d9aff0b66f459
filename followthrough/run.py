"""What the CLI's one runner hands each command: its parsed options and its settings
(with both server URLs resolved where the command needs servers)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from followthrough.settings import Settings


@dataclass(frozen=True, slots=True)
class Run:
    args: argparse.Namespace
    settings: Settings
