"""Shared fixtures, one plugin module per part that provides them (tests/fixtures/)."""

pytest_plugins = [
    "tests.fixtures.sandbox",
    "tests.fixtures.database",
    "tests.fixtures.genesys",
    "tests.fixtures.bridge",
]
