"""asyncssh (2.x) against the server: every kex x cipher pair asyncssh offers from our list,
password and key logins, create_process with a PTY, change_terminal_size, client re-keys."""

from __future__ import annotations

import asyncio
import random

import asyncssh
import pytest
from asyncssh.encryption import get_encryption_algs
from asyncssh.kex import get_kex_algs

from conftest import ALICE, ALICE_PW, IO_TIMEOUT, RAWCAT_BYTES, SERVER_CIPHERS, SERVER_KEX

LOCAL_KEX = {a.decode() for a in get_kex_algs()}
LOCAL_CIPHERS = {a.decode() for a in get_encryption_algs()}


def _pairs():
    out = []
    for kex in SERVER_KEX:
        for cipher in SERVER_CIPHERS:
            marks = []
            if kex not in LOCAL_KEX:
                # asyncssh does sntrup761 only through liboqs, which is not installed here.
                marks.append(pytest.mark.skip(reason=f"this asyncssh lacks {kex} (needs liboqs)"))
            if cipher not in LOCAL_CIPHERS:
                marks.append(pytest.mark.skip(reason=f"this asyncssh lacks {cipher}"))
            out.append(pytest.param(kex, cipher, id=f"{kex}+{cipher}", marks=marks))
    return out


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=300))


def connect(port, user, *, password=None, key_path=None, kex=None, cipher=None, **kw):
    opts = dict(
        host="127.0.0.1",
        port=port,
        username=user,
        known_hosts=None,
        agent_path=None,
        config=[],
        connect_timeout=IO_TIMEOUT,
        login_timeout=IO_TIMEOUT,
        server_host_key_algs=["ssh-ed25519"],
    )
    if key_path is not None:
        opts.update(client_keys=[str(key_path)], preferred_auth="publickey", password=None)
    else:
        opts.update(client_keys=None, preferred_auth="password", password=password)
    if kex is not None:
        opts["kex_algs"] = [kex]
    if cipher is not None:
        opts["encryption_algs"] = [cipher]
    opts.update(kw)
    return asyncssh.connect(**opts)


async def read_until(stream, needle: bytes, buf: bytearray) -> None:
    while needle not in buf:
        data = await asyncio.wait_for(stream.read(65536), timeout=IO_TIMEOUT)
        if not data:
            raise AssertionError(f"EOF before {needle!r}; got {bytes(buf[-1500:])!r}")
        buf += data


async def cat_echo(conn, token: bytes) -> None:
    proc = await conn.create_process(
        "cat", term_type="xterm-256color", term_size=(80, 24), encoding=None
    )
    buf = bytearray()
    proc.stdin.write(token + b"\n")
    await read_until(proc.stdout, token, buf)
    del buf[: buf.index(token) + len(token)]
    await read_until(proc.stdout, token, buf)
    proc.stdin.write(b"\x04")
    result = await asyncio.wait_for(proc.wait(), timeout=IO_TIMEOUT)
    assert result.exit_status == 0, result


def test_asyncssh_offers_mlkem_curve25519_chacha_and_gcm():
    assert {"mlkem768x25519-sha256", "curve25519-sha256", "curve25519-sha256@libssh.org"} <= LOCAL_KEX
    assert set(SERVER_CIPHERS) <= LOCAL_CIPHERS


@pytest.mark.parametrize("auth", ["password", "ed25519-key"])
@pytest.mark.parametrize("kex,cipher", _pairs())
def test_each_kex_and_cipher_pair_logs_in_and_echoes(server, keys, kex, cipher, auth):
    async def go():
        creds = (
            {"password": ALICE_PW} if auth == "password" else {"key_path": keys["ed25519"].private}
        )
        async with connect(server.port, ALICE, kex=kex, cipher=cipher, **creds) as conn:
            assert conn.get_extra_info("send_cipher") == cipher
            assert conn.get_extra_info("recv_cipher") == cipher
            await cat_echo(conn, f"{kex}/{cipher}/{auth}".encode())

    run(go())


@pytest.mark.parametrize("kind", ["ecdsa", "rsa"])
def test_ecdsa_and_rsa_keys_log_in(server, keys, kind):
    async def go():
        async with connect(server.port, ALICE, key_path=keys[kind].private) as conn:
            await cat_echo(conn, f"asyncssh-{kind}".encode())

    run(go())


def test_a_wrong_password_is_refused(server):
    async def go():
        with pytest.raises(asyncssh.PermissionDenied):
            async with connect(server.port, ALICE, password="nope-nope-nope"):
                pass

    run(go())


def test_change_terminal_size_reaches_the_game(server):
    async def go():
        async with connect(server.port, ALICE, password=ALICE_PW) as conn:
            proc = await conn.create_process(
                "sizeloop", term_type="xterm-256color", term_size=(80, 24), encoding=None
            )
            buf = bytearray()
            await read_until(proc.stdout, b"SIZE 24 80", buf)
            for cols, rows in [(120, 30), (81, 25)]:
                proc.change_terminal_size(cols, rows)
                want = f"SIZE {rows} {cols}".encode()
                for _ in range(20):  # bounded: see test_paramiko's twin
                    proc.stdin.write(b"\n")
                    n = buf.count(b"SIZE ")
                    while buf.count(b"SIZE ") <= n or not buf.endswith(b"\n"):
                        data = await asyncio.wait_for(proc.stdout.read(4096), timeout=IO_TIMEOUT)
                        assert data, f"EOF; got {bytes(buf)!r}"
                        buf += data
                    if want in buf:
                        break
                assert want in buf, bytes(buf)
            proc.stdin.write(b"quit\n")
            result = await asyncio.wait_for(proc.wait(), timeout=IO_TIMEOUT)
            assert result.exit_status == 0

    run(go())


def test_client_initiated_rekeys_lose_no_byte(server, keys):
    """asyncssh re-keys every 64 KiB while 4 MiB go through the raw-mode test game."""
    data = random.Random(99).randbytes(RAWCAT_BYTES)

    async def go():
        async with connect(
            server.port, ALICE, key_path=keys["ed25519"].private, rekey_bytes=65536
        ) as conn:
            proc = await conn.create_process(
                "rawcat", term_type="xterm", term_size=(80, 24), encoding=None
            )
            buf = bytearray()
            await read_until(proc.stdout, b"READY\n", buf)
            start = buf.index(b"READY\n") + len(b"READY\n")

            async def writer():
                for i in range(0, len(data), 16384):
                    proc.stdin.write(data[i : i + 16384])
                    await proc.stdin.drain()

            async def reader():
                while len(buf) - start < len(data):
                    chunk = await asyncio.wait_for(proc.stdout.read(65536), timeout=IO_TIMEOUT)
                    assert chunk, f"EOF after {len(buf) - start} of {len(data)} bytes"
                    buf.extend(chunk)

            try:
                await asyncio.gather(writer(), reader())
            except (AssertionError, asyncio.TimeoutError) as e:
                raise AssertionError(
                    f"stream stalled at {len(buf) - start} of {len(data)} bytes ({e!r}); "
                    f"game processes: {server.describe_games()}\n{server.log_tail()}"
                ) from None
            result = await asyncio.wait_for(proc.wait(), timeout=IO_TIMEOUT)
            assert result.exit_status == 0
            got = bytes(buf[start:])
            assert len(got) == len(data)
            assert got == data, "stream differs"

    run(go())


def test_after_max_auth_tries_wrong_passwords_the_server_disconnects(server):
    """asyncssh keeps offering wrong passwords on one connection (no new service request per
    try); the server must end the connection after ssh.max_auth_tries failures."""
    max_tries = server.config_dict()["ssh"]["max_auth_tries"]
    give_up_after = max_tries + 5
    asked: list[int] = []

    class WrongPasswords(asyncssh.SSHClient):
        def password_auth_requested(self):
            asked.append(1)
            return f"wrong-{len(asked)}" if len(asked) <= give_up_after else None

    async def go():
        with pytest.raises((asyncssh.DisconnectError, asyncssh.ConnectionLost)):
            async with connect(server.port, ALICE, password=None, client_factory=WrongPasswords):
                pass

    run(go())
    assert len(asked) <= give_up_after, "the server never disconnected; the client gave up"
    assert max_tries - 1 <= len(asked) <= max_tries + 1, (
        f"disconnected after {len(asked)} passwords, max_auth_tries is {max_tries}"
    )
