"""Re-keying under load: megabytes through a game while keys change every 64 KiB.

The stream goes through `rawcat` (a test-only game: `stty raw -echo`, then `head -c N`), so the
PTY passes every byte through unchanged and exactly once: the output can be compared byte for
byte with the input. (Plain `cat` in a cooked PTY echoes each line twice and the kernel may
interleave its echo with cat's output at any point once the output buffer fills, so a cooked
stream cannot be compared exactly.)
"""

from __future__ import annotations

import random
import threading
import zlib

import pytest

from conftest import ALICE, RAWCAT_BYTES, SshProc, ssh_argv

STREAM_TIMEOUT = 120  # bounds the exit after the last byte; a stall fails after IO_TIMEOUT
CHUNK = 16 * 1024


def pattern(n: int, seed: int) -> bytes:
    """Deterministic bytes covering all 256 values."""
    return random.Random(seed).randbytes(n)


def stream_through_rawcat(server, ssh: SshProc, data: bytes) -> None:
    start = ssh.expect(b"READY\n", timeout=60)

    def writer():
        try:
            for i in range(0, len(data), CHUNK):
                ssh.send(data[i : i + CHUNK])
        except (BrokenPipeError, OSError, ValueError):
            pass  # ssh was killed after a failure: the reader side reports it

    # Writes block while the server's window is closed, so they get their own thread; the
    # reader fails if the echo stops making progress (a stall), never on how long it took.
    t = threading.Thread(target=writer, daemon=True)
    t.start()
    try:
        ssh.wait_out_len(start + len(data))
    except AssertionError as e:
        raise AssertionError(
            f"{e}\ngame processes at the stall: {server.describe_games()}\n{server.log_tail()}"
        ) from None
    t.join(timeout=STREAM_TIMEOUT)
    rc = ssh.wait(timeout=STREAM_TIMEOUT)
    got = bytes(ssh.out[start:])
    assert rc == 0, ssh.describe()
    assert len(got) == len(data), f"got {len(got)} bytes back, sent {len(data)}"
    if got != data:
        first = next(i for i, (a, b) in enumerate(zip(got, data)) if a != b)
        raise AssertionError(
            f"stream differs from byte {first}: sent {data[first:first + 32]!r}, "
            f"got {got[first:first + 32]!r}"
        )


def test_a_4mb_stream_without_rekeys_comes_back_byte_exact(server, keys):
    """Baseline for the re-key tests below: the same stream with no re-key at all."""
    data = pattern(RAWCAT_BYTES, seed=1)
    argv = ssh_argv(server.port, ALICE, "-v", key=keys["ed25519"], command="rawcat")
    with SshProc(argv) as ssh:
        stream_through_rawcat(server, ssh, data)
        assert ssh.err.count(b"SSH2_MSG_NEWKEYS received") == 1, ssh.describe()


@pytest.mark.parametrize(
    "cipher",
    ["chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com"],
)
def test_client_initiated_rekeys_every_64k_lose_no_byte_of_a_4mb_stream(server, keys, cipher):
    data = pattern(RAWCAT_BYTES, seed=zlib.crc32(cipher.encode()))
    argv = ssh_argv(
        server.port,
        ALICE,
        "-v",
        "-o",
        "RekeyLimit=64K",
        "-o",
        f"Ciphers={cipher}",
        key=keys["ed25519"],
        command="rawcat",
    )
    with SshProc(argv) as ssh:
        stream_through_rawcat(server, ssh, data)
        newkeys = ssh.err.count(b"SSH2_MSG_NEWKEYS received")
        # 4 MiB one way alone crosses the 64 KiB limit 64 times.
        assert newkeys >= 32, f"only {newkeys} key exchanges\n{ssh.describe()}"


def test_server_initiated_rekeys_lose_no_byte_of_a_4mb_stream(server_factory, keys):
    srv = server_factory("rekey", ssh_overrides={"rekey_bytes": 65536})
    srv.add_user(ALICE, "alice-pass-1", [keys["ed25519"]])
    srv.start()
    data = pattern(RAWCAT_BYTES, seed=7)
    argv = ssh_argv(srv.port, ALICE, "-v", key=keys["ed25519"], command="rawcat")
    with SshProc(argv) as ssh:
        stream_through_rawcat(srv, ssh, data)
        kexinits = ssh.err.count(b"SSH2_MSG_KEXINIT received")
        newkeys = ssh.err.count(b"SSH2_MSG_NEWKEYS received")
        assert kexinits >= 16, f"server started only {kexinits - 1} re-keys\n{ssh.describe()}"
        assert newkeys >= 16, ssh.describe()
