"""Which hosts and IP addresses a user-given URL may reach.

Pure functions, no DNS: the fetcher resolves names itself and runs every resolved address
through :func:`address_refusal`; the create-time URL check runs IP literals and well-known
local names through the same rules.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network
from typing import Final

IPAddress = IPv4Address | IPv6Address

PRIVATE_RULE: Final = "must not point to a private, loopback, link-local or metadata address"
SPECIAL_RULE: Final = "must not point to an unspecified, multicast or reserved address"

# Instance-metadata and platform endpoints: refused even when private addresses are allowed,
# since reaching them from a worker leaks the host's credentials.
_METADATA: Final = frozenset(
    {
        IPv4Address("169.254.169.254"),  # AWS, GCP, Azure, OCI, DigitalOcean, ...
        IPv4Address("169.254.170.2"),  # AWS ECS task metadata
        IPv4Address("100.100.100.200"),  # Alibaba Cloud
        IPv4Address("168.63.129.16"),  # Azure WireServer (a public-looking address)
        IPv6Address("fd00:ec2::254"),  # AWS IMDS over IPv6
        IPv6Address("fd20:ce::254"),  # GCE metadata over IPv6
    }
)
_METADATA_NAMES: Final = frozenset({"metadata.google.internal", "metadata.goog"})

# Reachable only inside the deployment; allowed when the operator says so (allow_private).
_PRIVATE: Final[tuple[IPv4Network | IPv6Network, ...]] = tuple(
    ip_network(n)
    for n in (
        "127.0.0.0/8",  # loopback
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",  # carrier-grade NAT shared space
        "::1/128",
        "fc00::/7",  # unique local
        "fec0::/10",  # deprecated site-local
    )
)

_LINK_LOCAL: Final[tuple[IPv4Network | IPv6Network, ...]] = (
    ip_network("169.254.0.0/16"),
    ip_network("fe80::/10"),
)

# Never a real file server: refused whatever the deployment says.
_SPECIAL: Final[tuple[IPv4Network | IPv6Network, ...]] = tuple(
    ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network", including the unspecified address
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # former 6to4 relay anycast
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, including broadcast
        "::/128",
        "100::/64",  # discard-only
        "64:ff9b:1::/48",  # local-use NAT64
        "2001::/23",  # IETF protocol assignments, Teredo included
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
        "ff00::/8",  # multicast
    )
)

_NAT64: Final = ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE: Final = ip_network("::/96")
_IPV4_TRANSLATED: Final = ip_network("::ffff:0:0:0/96")


def embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, compatible, 6to4, NAT64)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    low32 = IPv4Address(int(address) & 0xFFFF_FFFF)
    if address in _NAT64 or address in _IPV4_TRANSLATED:
        return low32
    # ::/96 also holds :: and ::1, which the IPv6 tables judge as themselves.
    if address in _IPV4_COMPATIBLE and int(address) > 1:
        return low32
    return None


def address_refusal(address: IPAddress, *, allow_private: bool = False) -> str | None:
    """The rule ``address`` breaks (a sentence fragment), or None if it may be fetched."""
    if isinstance(address, IPv6Address):
        address = IPv6Address(address.compressed.split("%", 1)[0])  # drop any zone
        inner = embedded_ipv4(address)
        if inner is not None:
            refusal = address_refusal(inner, allow_private=allow_private)
            if refusal is not None:
                return refusal
            if address.ipv4_mapped is not None or address in _IPV4_COMPATIBLE:
                return None  # these are the IPv4 address itself
    if address in _METADATA:
        return PRIVATE_RULE
    if any(address in net for net in _LINK_LOCAL):
        return PRIVATE_RULE
    if any(address in net for net in _SPECIAL):
        return SPECIAL_RULE
    if not allow_private and any(address in net for net in _PRIVATE):
        return PRIVATE_RULE
    return None


def host_name_refusal(host: str, *, allow_private: bool = False) -> str | None:
    """The rule a DNS name breaks on its face (no lookup), or None.

    ``host`` is lower-case ASCII without a trailing dot. Catches names that always mean
    this machine or the cloud metadata service, so they fail at create time.
    """
    if host in _METADATA_NAMES:
        return PRIVATE_RULE
    if host == "localhost" or host.endswith(".localhost") or host == "localhost.localdomain":
        return None if allow_private else PRIVATE_RULE
    return None


def _ends_in_number(label: str) -> bool:
    if label.isascii() and label.isdigit():
        return True
    if label[:2].lower() == "0x":
        return all(c in "0123456789abcdefABCDEF" for c in label[2:])
    return False


def _parse_ipv4_number(label: str) -> int:
    if label[:2].lower() == "0x":
        return int(label[2:] or "0", 16)
    if len(label) > 1 and label.startswith("0"):
        return int(label[1:], 8)  # raises ValueError on 8 or 9, as it should
    if not (label.isascii() and label.isdigit()):
        raise ValueError(label)
    return int(label, 10)


def parse_ipv4_literal(host: str) -> IPv4Address | None:
    """Parse every spelling the C library and browsers accept as IPv4.

    ``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``127.1`` all mean 127.0.0.1. Follows the
    WHATWG URL rule: a host whose last label is a number must be an IPv4 address, so
    ``1.2.3.256`` raises ValueError rather than being treated as a name. Returns None
    for ordinary names.
    """
    labels = host.split(".")
    if len(labels) > 1 and labels[-1] == "":
        labels.pop()  # "127.0.0.1." is still 127.0.0.1
    if not labels[-1] or not _ends_in_number(labels[-1]):
        return None
    if len(labels) > 4 or "" in labels:
        raise ValueError(f"not an IPv4 address: {host!r}")
    numbers = [_parse_ipv4_number(label) for label in labels]
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        raise ValueError(f"not an IPv4 address: {host!r}")
    value = last
    for position, number in enumerate(head):
        value |= number << (8 * (3 - position))
    return IPv4Address(value)


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address if ``host`` (as in a URL, brackets removed) is an IP literal, else None.

    Raises ValueError for a host that is neither a valid literal nor a possible name.
    """
    if ":" in host:
        return IPv6Address(host.split("%", 1)[0])
    return parse_ipv4_literal(host)
