"""Authentication: bearer JWTs (joserfc), their keys, and what a verified token allows."""
