"""Transport security for the server and the client, configured from the settings.

Ballots and voting policies are confidential, so the service speaks TLS whenever it is reachable
from another host. Certificates come from PEM files named in the environment (so that a secret
store or a mounted volume can provide them), and a client CA turns on mutual TLS. Plaintext is
allowed on loopback, for development and tests, and elsewhere only when asked for explicitly.

Server (``ServerTransport``):
  PROXYVOTE_TLS_CERT, PROXYVOTE_TLS_KEY  the server's certificate chain and key; both or neither
  PROXYVOTE_TLS_CLIENT_CA                requires client certificates signed by this CA (mTLS)
  PROXYVOTE_ALLOW_PLAINTEXT              1/true/yes: plaintext on a non-loopback address too

Client (``ClientTransport``):
  PROXYVOTE_TLS                          1/true/yes: TLS, verifying the server with the system roots
  PROXYVOTE_TLS_CA                       TLS, verifying the server with this CA instead
  PROXYVOTE_TLS_CLIENT_CERT, ..._KEY     the client's certificate and key, for mTLS; both or neither
  PROXYVOTE_TLS_SERVER_NAME              the name to expect in the server's certificate
Setting any of the client's TLS variables means TLS: a certificate is never ignored silently.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from pathlib import Path

import grpc

from proxyvote.errors import TransportConfigError
from proxyvote.settings import Settings


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1 (bracketed or not); names are not resolved."""
    host = host.strip().removeprefix("[").removesuffix("]").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def host_of(addr: str) -> str:
    """The host part of "host:port", "[v6]:port" or "host"."""
    if addr.startswith("["):
        host, bracket, rest = addr[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise TransportConfigError(f"bad address {addr!r}: expected [host]:port")
        return host
    host, colon, _ = addr.rpartition(":")
    return host if colon else addr


def _pem(name: str, path: str) -> bytes | None:
    if not path:
        return None
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TransportConfigError(f"cannot read {name} {path}: {exc.strerror or exc}") from exc
    if b"-----BEGIN " not in data:
        raise TransportConfigError(f"cannot use {name} {path}: not a PEM file")
    return data


def _pair(cert: tuple[str, str], key: tuple[str, str]) -> tuple[bytes | None, bytes | None]:
    """A certificate and its key, each (setting name, path): both or neither."""
    for present, missing in ((cert, key), (key, cert)):
        if present[1] and not missing[1]:
            raise TransportConfigError(f"{present[0]} is set but {missing[0]} is not")
    return _pem(*cert), _pem(*key)


@dataclasses.dataclass(frozen=True)
class ServerTransport:
    cert: bytes | None = None
    key: bytes | None = dataclasses.field(default=None, repr=False)
    client_ca: bytes | None = None
    allow_plaintext: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> ServerTransport:
        cert, key = _pair(("PROXYVOTE_TLS_CERT", settings.tls_cert), ("PROXYVOTE_TLS_KEY", settings.tls_key))
        if settings.tls_client_ca and cert is None:
            raise TransportConfigError(
                "PROXYVOTE_TLS_CLIENT_CA is set but PROXYVOTE_TLS_CERT and PROXYVOTE_TLS_KEY are not"
            )
        return cls(
            cert=cert,
            key=key,
            client_ca=_pem("PROXYVOTE_TLS_CLIENT_CA", settings.tls_client_ca),
            allow_plaintext=settings.allow_plaintext,
        )

    @property
    def mode(self) -> str:
        """One of mTLS, TLS or plaintext, for the log."""
        if self.cert is None:
            return "plaintext"
        return "mTLS" if self.client_ca else "TLS"

    def bind(self, server: grpc.Server, addr: str) -> int:
        """Binds ``addr`` (port 0 picks a free one) and returns the port."""
        if self.cert is not None:
            credentials = grpc.ssl_server_credentials(
                [(self.key, self.cert)],
                root_certificates=self.client_ca,
                require_client_auth=bool(self.client_ca),
            )
            port = server.add_secure_port(addr, credentials)
        elif self.allow_plaintext or is_loopback(host_of(addr)):
            port = server.add_insecure_port(addr)
        else:
            raise TransportConfigError(
                f"refusing plaintext on {addr}: set PROXYVOTE_TLS_CERT and PROXYVOTE_TLS_KEY, "
                "or PROXYVOTE_ALLOW_PLAINTEXT=1"
            )
        if port == 0:
            raise OSError(f"could not bind {addr}")
        return port


@dataclasses.dataclass(frozen=True)
class ClientTransport:
    tls: bool = False
    ca: bytes | None = None
    client_cert: bytes | None = None
    client_key: bytes | None = dataclasses.field(default=None, repr=False)
    server_name: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> ClientTransport:
        cert, key = _pair(
            ("PROXYVOTE_TLS_CLIENT_CERT", settings.client_tls_cert),
            ("PROXYVOTE_TLS_CLIENT_KEY", settings.client_tls_key),
        )
        ca = _pem("PROXYVOTE_TLS_CA", settings.client_tls_ca)
        server_name = settings.client_tls_server_name or None
        tls = settings.client_tls or any((ca, cert, server_name))
        return cls(tls=tls, ca=ca, client_cert=cert, client_key=key, server_name=server_name)

    def channel(self, address: str, options: list[tuple[str, object]] | None = None) -> grpc.Channel:
        options = list(options or ())
        if not self.tls:
            return grpc.insecure_channel(address, options=options)
        if self.server_name:
            options.append(("grpc.ssl_target_name_override", self.server_name))
        credentials = grpc.ssl_channel_credentials(
            root_certificates=self.ca, private_key=self.client_key, certificate_chain=self.client_cert
        )
        return grpc.secure_channel(address, credentials, options=options)
