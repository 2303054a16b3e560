"""OpenID Connect provider endpoints."""
