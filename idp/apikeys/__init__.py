"""API keys: long-lived credentials a user creates for scripts and services, limited by scopes."""
