"""HOST:PORT parsing and resolution, once, before any work starts."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from core.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Endpoint:
    family: int  # socket.AF_INET or AF_INET6
    address: str
    port: int

    @property
    def sockaddr(self) -> tuple[str, int]:
        return (self.address, self.port)

    def __str__(self) -> str:
        host = f"[{self.address}]" if self.family == socket.AF_INET6 else self.address
        return f"{host}:{self.port}"


def parse_endpoint(text: str, default_port: int | None = None) -> Endpoint:
    """``host:port``, ``[v6]:port`` or a bare host (with a default port); names resolved now."""
    host, port_text = text, ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    if not port_text:
        if default_port is None:
            raise ConfigError(f"{text}: expected HOST:PORT")
        port_text = str(default_port)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"{text}: port must be a number from 1 to 65535")
    try:
        info = socket.getaddrinfo(host or "127.0.0.1", int(port_text), type=socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise ConfigError(f"{text}: cannot resolve {host!r}: {exc.strerror}") from exc
    family, _, _, _, sockaddr = info[0]
    return Endpoint(family, str(sockaddr[0]), int(port_text))
