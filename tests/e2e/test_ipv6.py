"""Listening on IPv6 and on several addresses: `ssh.listen` and `http.listen` take one address
or a list; a lone `[::]` is dual-stack, and `0.0.0.0` beside `[::]` binds both."""

from __future__ import annotations

import socket

import pytest

from conftest import ALICE, ALICE_PW, SshProc, cat_echo, paramiko_transport, ssh_argv
from metrics_util import http_request


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback on this host")


def logs_in_and_echoes(port: int, host: str, token: bytes) -> None:
    with paramiko_transport(port, host=host) as t:
        t.auth_password(ALICE, ALICE_PW)
        assert t.is_authenticated()
        cat_echo(t, token)


def test_a_list_of_ipv4_and_ipv6_loopback_addresses_serves_ssh_and_http_on_both(server_factory, keys):
    srv = server_factory("v4v6", listen_hosts=["127.0.0.1", "[::1]"])
    srv.add_user(ALICE, ALICE_PW, [keys["ed25519"]])
    srv.start()
    assert any(f"ssh listening on [::1]:{srv.port}" in line for line in srv.stdout_lines), srv.stdout_lines
    logs_in_and_echoes(srv.port, "127.0.0.1", b"over-ipv4")
    logs_in_and_echoes(srv.port, "::1", b"over-ipv6")
    # The OpenSSH client over IPv6, with a key.
    argv = ssh_argv(srv.port, ALICE, "-o", "LogLevel=ERROR", key=keys["ed25519"], command="cat", host="::1")
    with SshProc(argv) as ssh:
        ssh.send(b"openssh-over-ipv6\n")
        end = ssh.expect(b"openssh-over-ipv6")
        ssh.expect(b"openssh-over-ipv6", end)
        ssh.send(b"\x04")
        assert ssh.wait() == 0, ssh.describe()
    for host in ("127.0.0.1", "::1"):
        r = http_request(srv.http_port, "/health/live", host=host)
        assert r.status == 200, (host, r)


def test_a_lone_ipv6_wildcard_is_dual_stack(server_factory):
    srv = server_factory("dual", listen_hosts=["[::]"])
    srv.add_user(ALICE, ALICE_PW)
    srv.start()
    logs_in_and_echoes(srv.port, "::1", b"dual-v6")
    logs_in_and_echoes(srv.port, "127.0.0.1", b"dual-v4")
    assert http_request(srv.http_port, "/health/live", host="127.0.0.1").status == 200
    assert http_request(srv.http_port, "/health/live", host="::1").status == 200


def test_ipv4_and_ipv6_wildcards_on_one_port_bind_side_by_side(server_factory):
    srv = server_factory("both", listen_hosts=["0.0.0.0", "[::]"])
    srv.add_user(ALICE, ALICE_PW)
    srv.start()
    logs_in_and_echoes(srv.port, "127.0.0.1", b"side-v4")
    logs_in_and_echoes(srv.port, "::1", b"side-v6")
