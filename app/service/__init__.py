"""Use-cases: apply core rules and persist through the Store; no HTTP, no SQL."""
