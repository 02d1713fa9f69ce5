"""Transport security against a real server on loopback: TLS, mutual TLS and the plaintext guard.

The certificates are made once per session with the openssl command line: a CA, a server
certificate for localhost and 127.0.0.1, a client certificate, and a second CA with its own
client certificate, which neither side must trust.
"""

from __future__ import annotations

import contextlib
import subprocess
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from proxyvote.api.transport import (
    ClientTransport,
    ServerTransport,
    host_of,
    is_loopback,
)
from proxyvote.errors import ConfigurationError, TransportConfigError
from proxyvote.settings import Settings

TIMEOUT = 3.0
SERVING = health_pb2.HealthCheckResponse.SERVING
SERVER_EXT = "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
CLIENT_EXT = "extendedKeyUsage=clientAuth\n"


def server_transport(env: dict[str, str]) -> ServerTransport:
    """The server's transport from these environment variables alone (the settings read them)."""
    return ServerTransport.from_settings(Settings.load(env))


def client_transport(env: dict[str, str]) -> ClientTransport:
    """The client's transport from these environment variables alone (the settings read them)."""
    return ClientTransport.from_settings(Settings.load(env))


def openssl(cwd, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def make_ca(cwd, name: str) -> None:
    openssl(
        cwd, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-days", "1", "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.pem",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
    )  # fmt: skip


def make_leaf(cwd, name: str, ca: str, extensions: str) -> None:
    (cwd / f"{name}.ext").write_text(extensions)
    openssl(
        cwd, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.csr",
    )  # fmt: skip
    openssl(
        cwd, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-days", "1", "-extfile", f"{name}.ext", "-out", f"{name}.pem",
    )  # fmt: skip


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("pki")
    make_ca(cwd, "ca")
    make_leaf(cwd, "server", "ca", SERVER_EXT)
    make_leaf(cwd, "client", "ca", CLIENT_EXT)
    make_ca(cwd, "rogue-ca")
    make_leaf(cwd, "rogue-client", "rogue-ca", CLIENT_EXT)
    return cwd


def server_env(pki, mtls: bool = False) -> dict[str, str]:
    env = {"PROXYVOTE_TLS_CERT": str(pki / "server.pem"), "PROXYVOTE_TLS_KEY": str(pki / "server.key")}
    if mtls:
        env["PROXYVOTE_TLS_CLIENT_CA"] = str(pki / "ca.pem")
    return env


def client(pki, ca: str = "ca", cert: str | None = None, **extra: str) -> ClientTransport:
    env = {"PROXYVOTE_TLS_CA": str(pki / f"{ca}.pem"), **extra}
    if cert:
        env["PROXYVOTE_TLS_CLIENT_CERT"] = str(pki / f"{cert}.pem")
        env["PROXYVOTE_TLS_CLIENT_KEY"] = str(pki / f"{cert}.key")
    return client_transport(env)


@contextlib.contextmanager
def serving(transport: ServerTransport, addr: str = "127.0.0.1:0"):
    """A real server with the health service, bound through ``transport``; yields the port."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    try:
        port = transport.bind(server, addr)
        server.start()
        yield port
    finally:
        server.stop(None)


def check(transport: ClientTransport, port: int) -> int:
    with transport.channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return stub.Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT).status


def refused(transport: ClientTransport, port: int) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        check(transport, port)
    return info.value.code()


@pytest.fixture(scope="module")
def tls_port(pki):
    with serving(server_transport(server_env(pki))) as port:
        yield port


@pytest.fixture(scope="module")
def mtls_port(pki):
    with serving(server_transport(server_env(pki, mtls=True))) as port:
        yield port


def test_tls_client_that_trusts_the_ca_is_served(pki, tls_port):
    assert check(client(pki), tls_port) == SERVING


def test_plaintext_client_is_refused_by_a_tls_server(tls_port):
    assert refused(client_transport({}), tls_port) == grpc.StatusCode.UNAVAILABLE


def test_client_refuses_a_server_signed_by_another_ca(pki, tls_port):
    assert refused(client(pki, ca="rogue-ca"), tls_port) == grpc.StatusCode.UNAVAILABLE


def test_server_name_override_is_checked_against_the_certificate(pki, tls_port):
    assert check(client(pki, PROXYVOTE_TLS_SERVER_NAME="localhost"), tls_port) == SERVING
    wrong = client(pki, PROXYVOTE_TLS_SERVER_NAME="elsewhere.example")
    assert refused(wrong, tls_port) == grpc.StatusCode.UNAVAILABLE


def test_mtls_serves_a_client_with_a_certificate_from_the_ca(pki, mtls_port):
    assert check(client(pki, cert="client"), mtls_port) == SERVING


def test_mtls_refuses_a_client_without_a_certificate(pki, mtls_port):
    assert refused(client(pki), mtls_port) == grpc.StatusCode.UNAVAILABLE


def test_mtls_refuses_a_client_certificate_from_another_ca(pki, mtls_port):
    assert refused(client(pki, cert="rogue-client"), mtls_port) == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("addr", ["127.0.0.1:0", "localhost:0"])
def test_plaintext_is_allowed_on_loopback(addr):
    transport = server_transport({})
    assert transport.mode == "plaintext"
    with serving(transport, addr) as port:
        assert check(client_transport({}), port) == SERVING


@pytest.mark.parametrize("addr", ["0.0.0.0:0", "[::]:0", ":0", "10.1.2.3:50051", "example.com:50051"])
def test_plaintext_is_refused_off_loopback(addr):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    try:
        with pytest.raises(
            TransportConfigError, match=r"refusing plaintext on .*PROXYVOTE_ALLOW_PLAINTEXT=1"
        ):
            server_transport({}).bind(server, addr)
    finally:
        server.stop(None)


class RecordingServer:
    """Stands in for grpc.Server so that the allowed case binds nothing beyond loopback."""

    def __init__(self):
        self.insecure = []

    def add_insecure_port(self, addr: str) -> int:
        self.insecure.append(addr)
        return 50051


@pytest.mark.parametrize("value", ["1", "true", "YES"])
def test_plaintext_off_loopback_when_explicitly_allowed(value):
    server = RecordingServer()
    transport = server_transport({"PROXYVOTE_ALLOW_PLAINTEXT": value})
    assert transport.bind(server, "0.0.0.0:50051") == 50051
    assert server.insecure == ["0.0.0.0:50051"]


def test_modes_and_no_private_key_in_repr(pki):
    tls = server_transport(server_env(pki))
    assert (tls.mode, server_transport(server_env(pki, mtls=True)).mode) == ("TLS", "mTLS")
    assert b"PRIVATE KEY" in tls.key and "PRIVATE KEY" not in repr(tls)
    assert "PRIVATE KEY" not in repr(client(pki, cert="client"))


def test_client_defaults_to_plaintext_and_tls_flag_uses_system_roots():
    assert client_transport({}).tls is False
    system_roots = client_transport({"PROXYVOTE_TLS": "1"})
    assert system_roots.tls is True and system_roots.ca is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PROXYVOTE_TLS_CERT": "server.pem"}, "PROXYVOTE_TLS_CERT is set but PROXYVOTE_TLS_KEY is not"),
        ({"PROXYVOTE_TLS_KEY": "server.key"}, "PROXYVOTE_TLS_KEY is set but PROXYVOTE_TLS_CERT is not"),
        ({"PROXYVOTE_TLS_CLIENT_CA": "ca.pem"}, "PROXYVOTE_TLS_CLIENT_CA is set but PROXYVOTE_TLS_CERT"),
        (
            {"PROXYVOTE_TLS_CERT": "missing.pem", "PROXYVOTE_TLS_KEY": "server.key"},
            "cannot read PROXYVOTE_TLS_CERT .*missing.pem: No such file",
        ),
        (
            {"PROXYVOTE_TLS_CERT": "server.ext", "PROXYVOTE_TLS_KEY": "server.key"},
            "cannot use PROXYVOTE_TLS_CERT .*server.ext: not a PEM file",
        ),
    ],
)
def test_server_misconfiguration_is_one_clear_line(pki, env, message):
    env = {
        name: str(pki / value) if name.endswith(("CERT", "KEY", "CA")) else value
        for name, value in env.items()
    }
    with pytest.raises(TransportConfigError, match=message) as info:
        server_transport(env)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PROXYVOTE_ALLOW_PLAINTEXT": "maybe"}, "PROXYVOTE_ALLOW_PLAINTEXT='maybe': expected"),
        ({"PROXYVOTE_TLS": "on"}, "PROXYVOTE_TLS='on': expected"),
    ],
)
def test_a_transport_switch_that_is_not_yes_or_no_is_one_clear_line(env, message):
    """The settings parse the switches, for the server and the client alike, before any transport."""
    with pytest.raises(ConfigurationError, match=message) as info:
        server_transport(env)
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigurationError, match=message):
        client_transport(env)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"PROXYVOTE_TLS_CLIENT_CERT": "c.pem"},
            "PROXYVOTE_TLS_CLIENT_CERT is set but PROXYVOTE_TLS_CLIENT_KEY",
        ),
        (
            {"PROXYVOTE_TLS_CLIENT_KEY": "c.key"},
            "PROXYVOTE_TLS_CLIENT_KEY is set but PROXYVOTE_TLS_CLIENT_CERT",
        ),
        ({"PROXYVOTE_TLS_CA": "/nonexistent/ca.pem"}, "cannot read PROXYVOTE_TLS_CA /nonexistent/ca.pem"),
    ],
)
def test_client_misconfiguration_is_one_clear_line(env, message):
    with pytest.raises(TransportConfigError, match=message):
        client_transport(env)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LocalHost.", True),
        ("::ffff:127.0.0.1", True),
        ("0.0.0.0", False),
        ("::", False),
        ("[::]", False),
        ("", False),
        ("10.0.0.1", False),
        ("128.0.0.1", False),
        ("localhost.example.com", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host, expected):
    assert is_loopback(host) is expected


@pytest.mark.parametrize(
    ("addr", "host"),
    [("127.0.0.1:50051", "127.0.0.1"), ("[::1]:50051", "::1"), ("localhost:0", "localhost"), (":0", "")],
)
def test_host_of(addr, host):
    assert host_of(addr) == host


def test_host_of_rejects_an_unclosed_bracket():
    with pytest.raises(TransportConfigError, match="bad address"):
        host_of("[::1:50051")
