"""Policy: Casbin role rights (and, with the label issue, the releasability rule)."""
