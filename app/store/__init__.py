"""Persistence: the Store protocol and its backends. The only layer that knows SQL."""
