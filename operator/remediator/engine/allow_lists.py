"""The operator's allow-lists beyond namespaces and kinds: where it may send requests, which databases it
may connect to, and what a Job it creates may run as. Pure policy functions; the I/O layer resolves
names and calls them with what it found.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import ipaddress
from collections.abc import Collection, Iterable

from remediator.api.jobs import JobTemplate
from remediator.engine.guards import PROCEED, Outcome, Verdict

HOST_NOT_ALLOWED = "HostNotAllowed"
# Link-local and cloud metadata addresses: an httpCheck pointed there is a server-side request forgery.
# They are refused unless an allow-list names the exact address.
METADATA_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "100.100.100.200/32"))


def matches(value: str, patterns: Iterable[str]) -> bool:
    """Whether `value` matches one of the glob patterns (`*.example.com`, `ghcr.io/acme/*`), case-sensitively."""
    return any(fnmatch.fnmatchcase(value, pattern) for pattern in patterns)


def _is_metadata(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in METADATA_NETWORKS)


def host_allowed(host: str, addresses: Collection[str], patterns: Collection[str] | None) -> Verdict:
    """May the operator connect to `host`, which resolved to `addresses`?

    `patterns` (`--allow-http-host`): host globs, or None for any host. Whatever the patterns,
    a link-local or cloud-metadata address is refused unless a pattern is that exact address.
    """
    host = host.lower().rstrip(".")
    if patterns is not None and not matches(host, patterns):
        return Verdict(Outcome.REFUSE, HOST_NOT_ALLOWED, f"host {host} is not on the operator's egress allow-list")
    exact = set(patterns or ())
    for address in addresses:
        if _is_metadata(address) and address not in exact:
            return Verdict(Outcome.REFUSE, HOST_NOT_ALLOWED,
                           f"host {host} resolves to the link-local or metadata address {address}, which is refused "
                           "unless allowed by its exact address")
    return PROCEED


def database_hosts_allowed(hosts: Collection[str], patterns: Collection[str] | None) -> Verdict:
    """Refuse a database connection when any host it may reach is off `--allow-database-host` (None: any)."""
    if patterns is None:
        return PROCEED
    for host in hosts:
        if not matches(host.lower(), patterns):
            return Verdict(Outcome.REFUSE, HOST_NOT_ALLOWED,
                           f"database host {host} is not on the operator's database host allow-list")
    return PROCEED


@dataclasses.dataclass(frozen=True)
class JobPolicy:
    """What a Job created by the operator may be: its image, its ServiceAccount, its security context."""

    images: frozenset[str] = frozenset({"*"})
    service_accounts: frozenset[str] = frozenset({"default"})
    unrestricted: bool = False  # whether a step may turn the restricted security context off


def job_allowed(template: JobTemplate, policy: JobPolicy) -> Verdict:
    """Refuse a Job whose image, ServiceAccount or security context the policy does not allow."""
    if not matches(template.image, policy.images):
        return Verdict(Outcome.REFUSE, "ImageNotAllowed",
                       f"image {template.image} is not on the operator's job image allow-list")
    account = template.service_account_name or "default"
    if account not in policy.service_accounts:
        return Verdict(Outcome.REFUSE, "ServiceAccountNotAllowed",
                       f"ServiceAccount {account} is not on the operator's job ServiceAccount allow-list")
    if template.unrestricted and not policy.unrestricted:
        return Verdict(Outcome.REFUSE, "UnrestrictedJobNotAllowed",
                       "the job asks to run without the restricted security context, which the operator does not "
                       "allow")
    return PROCEED
