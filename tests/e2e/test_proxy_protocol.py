"""The server behind a real HAProxy (`send-proxy-v2`): every limit sees the client's own
address, a trusted source that sends no PROXY header is refused, an untrusted one that
sends one is not believed."""

from __future__ import annotations

import pathlib
import shutil
import subprocess

import pytest

from conftest import ALICE, ALICE_PW, free_port, paramiko_transport, server_says, wait_until

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")


class HAProxy:
    def __init__(self, root: pathlib.Path, backend_port: int):
        self.port = free_port()
        self.cfg = root / "haproxy.cfg"
        self.cfg.write_text(
            f"""global
    maxconn 256
defaults
    mode tcp
    timeout connect 10s
    timeout client 60s
    timeout server 60s
frontend ssh_in
    bind 127.0.0.1:{self.port}
    default_backend dungeongate
backend dungeongate
    server dg 127.0.0.1:{backend_port} send-proxy-v2
"""
        )
        self.proc = subprocess.Popen(
            ["haproxy", "-f", str(self.cfg), "-db"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

        def listening() -> bool:
            import socket

            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                return False

        assert wait_until(listening, 30), "haproxy did not start"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def proxied(server_factory, tmp_path):
    srv = server_factory(
        "proxied",
        ssh_overrides={"proxy_protocol_from": ["127.0.0.1"]},
        config_overrides={"limits": {"exempt": [], "deny": ["127.0.0.50"]}},
    )
    srv.add_user(ALICE, ALICE_PW)
    srv.start()
    hap = HAProxy(tmp_path, srv.port)
    yield srv, hap
    hap.stop()


def test_limits_and_logs_see_the_client_behind_haproxy(proxied):
    srv, hap = proxied
    # The deny list names the client, not the proxy: .50 is refused through HAProxy...
    assert b"not accepted here" in server_says(hap.port, "127.0.0.50")
    # ...and .51 gets in through the same proxy.
    with paramiko_transport(hap.port, source="127.0.0.51") as t:
        t.auth_password(ALICE, ALICE_PW)
        assert t.is_authenticated()
    # Log lines name the client too (a failed login logs one).
    import paramiko

    with paramiko_transport(hap.port, source="127.0.0.52") as t:
        with pytest.raises(paramiko.AuthenticationException):
            t.auth_password(ALICE, "wrong-password")
    assert wait_until(lambda: "client=127.0.0.52:" in srv.log_path.read_text(), 30), srv.log_tail()


def test_a_trusted_source_without_a_proxy_header_is_refused(proxied):
    srv, _ = proxied
    out = server_says(srv.port, "127.0.0.1")
    assert b"SSH-2.0-" in out  # our version line goes out first...
    # ...but the connection is closed: the SSH version line is not a PROXY header.
    with pytest.raises(Exception):
        with paramiko_transport(srv.port, source="127.0.0.1") as t:
            t.auth_password(ALICE, ALICE_PW)
    from metrics_util import scrape

    assert scrape(srv.http_port).total("connections_rejected_total", reason="bad_proxy_header") >= 1


def test_an_untrusted_source_cannot_claim_another_address(proxied):
    srv, _ = proxied
    import socket
    import struct

    # A PROXY v2 header from 127.0.0.9 (not trusted) claiming to be 127.0.0.50 (denied):
    # it is not a header to the server, just a broken SSH version line.
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    header = sig + bytes([0x21, 0x11]) + struct.pack(">H", 12)
    header += bytes([127, 0, 0, 50, 127, 0, 0, 1]) + struct.pack(">HH", 40000, srv.port)
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10, source_address=("127.0.0.9", 0))
    s.settimeout(5)
    s.sendall(header + b"SSH-2.0-x\r\n")
    out = bytearray()
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            out += chunk
    except OSError:
        pass
    s.close()
    assert b"not accepted here" not in out, "an untrusted PROXY header was believed"
