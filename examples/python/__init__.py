"""A Python runner example."""
