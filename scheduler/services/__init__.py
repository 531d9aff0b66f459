"""Use cases over the log: shares, accounts, workspaces and tokens, and the one unit of work for share streams."""
