"""Composition: settings, logging, the CLI, one builder per role (``bootstrap``), and the
local supervisor with the embedded servers. Nothing imports this package but entry points."""
