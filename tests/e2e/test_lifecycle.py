"""Server lifecycle: the host key survives restarts and is private; SIGTERM with a game running
ends the game and leaves nothing behind."""

from __future__ import annotations

import os
import pathlib
import stat

import paramiko

from conftest import (
    ALICE,
    ALICE_PW,
    IO_TIMEOUT,
    channel_read_until,
    exec_in_pty,
    paramiko_transport,
    wait_until,
)

PRIVATE_KEY_HEADER = b"-----BEGIN OPENSSH PRIVATE KEY-----"


def served_host_key(port: int) -> paramiko.PKey:
    t = paramiko_transport(port)
    try:
        return t.get_remote_server_key()
    finally:
        t.close()


def host_key_files(data_dir: pathlib.Path) -> list[pathlib.Path]:
    out = []
    for p in data_dir.rglob("*"):
        if p.is_file() and not p.is_symlink():
            with open(p, "rb") as f:
                if f.read(len(PRIVATE_KEY_HEADER)) == PRIVATE_KEY_HEADER:
                    out.append(p)
    return out


def test_the_host_key_persists_across_restarts_and_its_file_is_mode_0600(server_factory):
    srv = server_factory("hostkey").start()
    first = served_host_key(srv.port)
    assert first.get_name() == "ssh-ed25519"
    problems = srv.stop()
    assert problems == [], problems

    files = host_key_files(srv.data_dir)
    assert len(files) == 1, f"expected one OpenSSH private key in the data dir, found {files}"
    mode = stat.S_IMODE(os.stat(files[0]).st_mode)
    assert mode == 0o600, f"{files[0]} has mode {oct(mode)}"
    on_disk = paramiko.Ed25519Key.from_private_key_file(str(files[0]))
    assert on_disk.get_base64() == first.get_base64(), "served key is not the key on disk"

    srv.start()
    second = served_host_key(srv.port)
    assert second.get_fingerprint() == first.get_fingerprint()
    assert second.get_base64() == first.get_base64()

    other = server_factory("other-hostkey").start()
    assert served_host_key(other.port).get_base64() != first.get_base64(), (
        "two data dirs got the same host key"
    )


def test_sigterm_with_a_game_running_ends_it_and_leaves_no_process(server_factory):
    srv = server_factory("shutdown")
    srv.add_user(ALICE, ALICE_PW)
    srv.start()
    t = paramiko_transport(srv.port)
    try:
        t.auth_password(ALICE, ALICE_PW)
        chan = exec_in_pty(t, "cat")
        chan.sendall(b"before-shutdown\n")
        channel_read_until(chan, b"before-shutdown", bytearray())
        games = wait_until(srv.children, IO_TIMEOUT)
        assert games, "no game process while a game is being played"
        game_pids = [g.pid for g in games]

        # stop(): SIGTERM, SIGKILL only after a generous wait; reports anything left behind
        # (the test process is a subreaper, so orphaned games would be re-parented to it).
        problems = srv.stop()
        assert problems == [], problems
        for pid in game_pids:
            assert not os.path.exists(f"/proc/{pid}"), f"game {pid} still exists"
        assert wait_until(lambda: not t.is_active(), IO_TIMEOUT), "client still connected"
    finally:
        t.close()
