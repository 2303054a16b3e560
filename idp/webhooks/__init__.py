"""Webhooks: a user's HTTPS endpoints told of their security events, signed, delivered by the worker."""
