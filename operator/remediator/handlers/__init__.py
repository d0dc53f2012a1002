"""Kopf glue. Importing this package registers every handler with Kopf's default registry."""

from remediator.handlers import incidents, key_rotations, login, rollbacks

__all__ = ["incidents", "key_rotations", "login", "rollbacks"]
