"""Push delivery to webhooks: SSRF guard, signing and the delivery loop (being built)."""
