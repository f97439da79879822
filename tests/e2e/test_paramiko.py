"""paramiko (5.x) against the server: every kex x cipher pair paramiko offers from our list,
password and key logins, exec in a PTY, window-change, the lobby, refused requests."""

from __future__ import annotations

import contextlib

import paramiko
import pytest

from conftest import (
    ALICE,
    ALICE_PW,
    IO_TIMEOUT,
    cat_echo,
    channel_drain,
    channel_read_until,
    channel_read_while,
    echo_through,
    end_cat,
    exec_in_pty,
    exit_status,
    lobby_play_cat,
    open_shell,
    paramiko_transport,
    wait_until,
)

# paramiko has the @libssh.org name of curve25519 only, no sntrup, no chacha20-poly1305.
PARAMIKO_KEX = ["mlkem768x25519-sha256", "curve25519-sha256@libssh.org"]
PARAMIKO_CIPHERS = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"]
KEY_CLASSES = {
    "ed25519": paramiko.Ed25519Key,
    "ecdsa": paramiko.ECDSAKey,
    "rsa": paramiko.RSAKey,
}


def load_key(keys, kind: str):
    return KEY_CLASSES[kind].from_private_key_file(str(keys[kind].private))


@contextlib.contextmanager
def session(port, user, *, password=None, pkey=None, kex=None, cipher=None):
    t = paramiko_transport(port, kex, cipher)
    try:
        if pkey is not None:
            t.auth_publickey(user, pkey)
        elif password is not None:
            t.auth_password(user, password)
        assert t.is_authenticated()
        yield t
    finally:
        t.close()


def test_paramiko_offers_the_algorithms_this_module_iterates():
    assert set(PARAMIKO_KEX) <= set(paramiko.Transport._preferred_kex)
    assert set(PARAMIKO_CIPHERS) <= set(paramiko.Transport._preferred_ciphers)


@pytest.mark.parametrize("auth", ["password", "ed25519-key"])
@pytest.mark.parametrize("cipher", PARAMIKO_CIPHERS)
@pytest.mark.parametrize("kex", PARAMIKO_KEX)
def test_each_kex_and_cipher_pair_logs_in_and_echoes(server, keys, kex, cipher, auth):
    creds = {"password": ALICE_PW} if auth == "password" else {"pkey": load_key(keys, "ed25519")}
    with session(server.port, ALICE, kex=kex, cipher=cipher, **creds) as t:
        assert t.local_cipher == cipher and t.remote_cipher == cipher
        assert t.host_key_type == "ssh-ed25519"
        cat_echo(t, f"{kex}/{cipher}/{auth}".encode())


@pytest.mark.parametrize("kind", ["ecdsa", "rsa"])
def test_ecdsa_and_rsa_keys_log_in(server, keys, kind):
    with session(server.port, ALICE, pkey=load_key(keys, kind)) as t:
        cat_echo(t, f"{kind}-ok".encode())


def test_an_unregistered_key_is_refused(server, keys):
    pkey = paramiko.Ed25519Key.from_private_key_file(str(keys["stranger"].private))
    t = paramiko_transport(server.port)
    try:
        with pytest.raises(paramiko.AuthenticationException):
            t.auth_publickey(ALICE, pkey)
        assert not t.is_authenticated()
    finally:
        t.close()


def test_window_change_resizes_the_game_pty(server):
    with session(server.port, ALICE, password=ALICE_PW) as t:
        chan = exec_in_pty(t, "sizeloop")
        buf = bytearray()
        channel_read_until(chan, b"SIZE 24 80", buf)
        resize_until_the_game_sees_it(chan, buf, 100, 40)
        resize_until_the_game_sees_it(chan, buf, 132, 50)
        chan.sendall(b"quit\n")
        channel_drain(chan)
        assert exit_status(chan) == 0


def resize_until_the_game_sees_it(chan, buf: bytearray, cols: int, rows: int) -> None:
    """window-change to `cols` x `rows`, then send lines to `sizeloop` until it prints that
    size."""
    chan.resize_pty(width=cols, height=rows)
    want = f"SIZE {rows} {cols}".encode()
    # Each line makes the game print its current size; the resize is a request on the
    # same channel, so the first line after it should already see the new size. Keep
    # asking (bounded) rather than rely on that ordering.
    for _ in range(20):
        chan.sendall(b"\n")
        n = buf.count(b"SIZE ")
        channel_read_until_count(chan, buf, n + 1)
        if want in buf:
            break
    assert want in buf, bytes(buf)


def channel_read_until_count(chan, buf: bytearray, count: int) -> None:
    """Read until `buf` holds `count` whole SIZE lines."""
    if not channel_read_while(
        chan, buf, lambda: buf.count(b"SIZE ") < count or not buf.endswith(b"\n"), "no new SIZE line"
    ):
        raise AssertionError(f"channel closed; got {bytes(buf)!r}")


def test_the_lobby_shell_plays_the_first_game_and_quits(server):
    with session(server.port, ALICE, password=ALICE_PW) as t:
        sh = open_shell(t)
        sh.wait_for("Logged in as", "alice", "Play Cat", "Quit")
        lobby_play_cat(sh, server, "meow-meow", "Logged in as", "Play Cat", "Quit")
        sh.send(b"q")
        sh.wait_eof()


def test_a_wrong_password_is_refused_with_an_authentication_exception(server):
    t = paramiko_transport(server.port)
    try:
        with pytest.raises(paramiko.AuthenticationException):
            t.auth_password(ALICE, "definitely-wrong")
        assert not t.is_authenticated()
    finally:
        t.close()


def test_after_a_wrong_password_the_right_one_works_on_the_same_connection(server):
    """paramiko sends a fresh SERVICE_REQUEST "ssh-userauth" before every auth attempt (so do
    SSHClient's key-then-password fallbacks); OpenSSH's sshd accepts the repeat."""
    t = paramiko_transport(server.port)
    try:
        with pytest.raises(paramiko.AuthenticationException):
            t.auth_password(ALICE, "definitely-wrong")
        t.auth_password(ALICE, ALICE_PW)
        assert t.is_authenticated()
        cat_echo(t, b"second-try")
    finally:
        t.close()


def test_ssh_client_falls_back_from_a_refused_key_to_the_password(server, keys):
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    try:
        client.connect(
            "127.0.0.1",
            port=server.port,
            username=ALICE,
            password=ALICE_PW,
            pkey=paramiko.Ed25519Key.from_private_key_file(str(keys["stranger"].private)),
            allow_agent=False,
            look_for_keys=False,
            timeout=IO_TIMEOUT,
            banner_timeout=IO_TIMEOUT,
            auth_timeout=IO_TIMEOUT,
        )
        cat_echo(client.get_transport(), b"fallback-ok")
    finally:
        client.close()


def test_exec_of_an_unknown_command_gets_status_1_and_a_message(server):
    with session(server.port, ALICE, password=ALICE_PW) as t:
        chan = exec_in_pty(t, "no-such-game")
        out = channel_drain(chan)
        assert exit_status(chan) == 1
        assert out.strip(), "no message"
        # Without a PTY the message may go to stdout or stderr.
        chan2 = t.open_session(timeout=IO_TIMEOUT)
        chan2.exec_command("/bin/sh -c id")
        out2 = channel_drain(chan2)
        err2 = chan2.recv_stderr(65536) if chan2.recv_stderr_ready() else b""
        assert exit_status(chan2) == 1
        assert (out2 + err2).strip(), "no message"
        assert b"uid=" not in out2 + err2


def test_a_port_forward_is_refused_and_the_session_keeps_working(server):
    with session(server.port, ALICE, password=ALICE_PW) as t:
        with pytest.raises(paramiko.ChannelException):
            t.open_channel(
                "direct-tcpip",
                dest_addr=("127.0.0.1", server.http_port),
                src_addr=("127.0.0.1", 40000),
                timeout=IO_TIMEOUT,
            )
        assert t.is_active()
        with pytest.raises(paramiko.SSHException):
            t.request_port_forward("127.0.0.1", 0)
        assert t.is_active()
        cat_echo(t, b"still-alive-after-forward")


def test_an_sftp_subsystem_request_is_refused(server):
    with session(server.port, ALICE, password=ALICE_PW) as t:
        chan = t.open_session(timeout=IO_TIMEOUT)
        with pytest.raises(paramiko.SSHException):
            chan.invoke_subsystem("sftp")
        with pytest.raises(paramiko.SSHException):
            paramiko.SFTPClient.from_transport(t)
        assert t.is_active()
        cat_echo(t, b"still-alive-after-sftp")


def test_two_sessions_on_one_connection_run_side_by_side_one_game_at_most(server):
    with session(server.port, ALICE, password=ALICE_PW) as t:
        game = exec_in_pty(t, "cat")
        echo_through(game, b"chan-0-token")
        # The lobby on a second channel works beside the game, but starts no second game.
        lobby = open_shell(t)
        lobby.wait_for("Logged in as", ALICE)
        lobby.send(b"p")
        lobby.wait_for("One game per connection")
        echo_through(game, b"chan-0-still-here")
        end_cat(game)
        lobby.send(b"q")
        lobby.wait_eof()


def test_disconnecting_mid_game_ends_the_game(server):
    t = paramiko_transport(server.port)
    t.auth_password(ALICE, ALICE_PW)
    chan = exec_in_pty(t, "cat")
    chan.sendall(b"running\n")
    channel_read_until(chan, b"running", bytearray())
    assert wait_until(lambda: server.children(), IO_TIMEOUT), "no game process while playing"
    t.close()
    # The autouse idle check then requires the server to end and reap the game.
