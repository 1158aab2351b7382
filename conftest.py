"""Repository-level test configuration: only what the project's own tests need."""

pytest_plugins = ["pytester"]
