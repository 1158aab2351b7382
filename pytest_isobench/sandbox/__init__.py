"""Sandboxes: where agents work and benchmarks run (``local`` is the embedded default)."""
