"""Kopf glue. Importing this package registers every handler with Kopf's default registry."""

from remediator.handlers import incidents, login, rollbacks

__all__ = ["incidents", "login", "rollbacks"]
