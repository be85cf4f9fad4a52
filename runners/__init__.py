"""Python SDK for taskgate (clients and the runner harness); it talks to the HTTP API only.

The SDK itself arrives with the workers issue; this package reserves the import name.
"""
