"""References to other objects in the referring object's own namespace."""

from remediator.api.bases import SpecModel
from remediator.api.patterns import DNSSubdomain, SecretKey


class ObjectReference(SpecModel):
    """Another object of a known kind, by name, in the same namespace."""

    name: DNSSubdomain
    """Name of the object."""


class SecretReference(SpecModel):
    """A Secret in the same namespace."""

    name: DNSSubdomain
    """Name of the Secret."""


class SecretKeyRef(SpecModel):
    """One key of a Secret in the same namespace."""

    name: DNSSubdomain
    """Name of the Secret."""
    key: SecretKey
    """Key within the Secret."""


class ConnectionSecretRef(SpecModel):
    """A Secret holding how to connect to a PostgreSQL database.

    With `key`, that key holds a libpq connection URI; without it, the Secret has
    the keys host, port, user, password, dbname and sslmode.
    """

    name: DNSSubdomain
    """Name of the Secret."""
    key: SecretKey | None = None
    """Key holding a libpq URI (postgresql://...); unset: the Secret has one key per parameter."""
