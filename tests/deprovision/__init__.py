"""Deprovisioning engine tests: the pure model in tables, the rest against the sandbox."""
