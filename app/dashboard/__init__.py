"""The dashboard at /dashboard: HTML pages and their scripts. It serves no data: the
pages' scripts call the /v1 API with the signed-in user's token, so the API's scopes
apply to everything the dashboard shows or does."""
