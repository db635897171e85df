"""Signing keys, access tokens and their validation."""
