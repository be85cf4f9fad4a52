"""taskgate examples (importable so `examples.python.tasks:runner` resolves)."""
