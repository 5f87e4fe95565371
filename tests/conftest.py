"""Shared fixtures live in tests/support; they are registered here as plugins."""

pytest_plugins = ["tests.support.redis", "tests.support.openai_server"]
