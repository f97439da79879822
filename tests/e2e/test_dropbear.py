"""Dropbear's client `dbclient` (Debian `dropbear-bin`, 2022.83; what routers and embedded
systems ship) against the server: keys in dropbear's own format, password, a game in a PTY with
echo, the guest lobby, and each of our key exchanges it offers. It sends a guessed key-exchange
packet after its KEXINIT, which the server must skip when the first choices differ."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import pytest

from conftest import ALICE, ALICE_PW, CLI_TIMEOUT, TermProc, lobby_log_in, term_echo_through_cat, lobby_play_cat
from metrics_util import scrape

pytestmark = pytest.mark.skipif(shutil.which("dbclient") is None, reason="dbclient not installed")

# Our key exchanges that dbclient 2022.83 offers (no post-quantum hybrid yet).
DBCLIENT_KEX = ["curve25519-sha256", "curve25519-sha256@libssh.org"]


@pytest.fixture(scope="module")
def dropbear_keys(tmp_path_factory) -> dict[str, pathlib.Path]:
    """Keys made by `dropbearkey`, in dropbear's format, one of each type it makes."""
    d = tmp_path_factory.mktemp("dbkeys")
    out = {}
    for kind, extra in {"ed25519": [], "ecdsa": ["-s", "256"], "rsa": ["-s", "2048"]}.items():
        path = d / f"id_{kind}"
        subprocess.run(
            ["dropbearkey", "-t", kind, *extra, "-f", str(path)],
            check=True,
            capture_output=True,
            timeout=CLI_TIMEOUT,
        )
        out[kind] = path
    return out


def public_line(key: pathlib.Path) -> str:
    r = subprocess.run(
        ["dropbearkey", "-y", "-f", str(key)], check=True, capture_output=True, text=True
    )
    return next(line for line in r.stdout.splitlines() if line.startswith(("ssh-", "ecdsa-")))


def register_keys(server, keys: dict[str, pathlib.Path]) -> None:
    for kind, key in keys.items():
        pub = key.with_name(key.name + ".pub")
        pub.write_text(public_line(key) + "\n")
        server.cli("user", "key", "add", ALICE, str(pub))


def dbclient(port: int, user: str, *opts: str, command: str | None = None) -> list[str]:
    # -y -y: accept and do not store the host key (a fresh server each run).
    argv = ["dbclient", "-y", "-y", "-t", "-p", str(port), *opts, f"{user}@127.0.0.1"]
    return argv + ([command] if command else [])


@pytest.fixture(scope="module")
def db_server(server, dropbear_keys):
    register_keys(server, dropbear_keys)
    return server


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa", "rsa"])
def test_dbclient_logs_in_with_a_dropbear_key_and_plays_cat_with_echo(db_server, dropbear_keys, kind):
    argv = dbclient(db_server.port, ALICE, "-i", str(dropbear_keys[kind]), command="cat")
    with TermProc(argv) as t:
        term_echo_through_cat(t, f"dbclient-{kind}-echo".encode())


def test_dbclient_logs_in_with_a_password(db_server):
    env = dict(os.environ, DROPBEAR_PASSWORD=ALICE_PW)
    with TermProc(dbclient(db_server.port, ALICE, command="cat"), env=env) as t:
        term_echo_through_cat(t, b"dbclient-password-echo")


def test_dbclient_with_a_key_reaches_the_lobby_plays_and_quits(db_server, dropbear_keys):
    with TermProc(dbclient(db_server.port, ALICE, "-i", str(dropbear_keys["ed25519"]))) as t:
        t.wait_for("Logged in as", ALICE, "Play Cat")
        lobby_play_cat(t, db_server, "lobby-game-echo", "Logged in as", ALICE)
        t.send(b"q")
        assert t.wait() == 0, t.describe()


def test_dbclient_as_a_guest_gets_the_lobby_and_logs_in_there(db_server):
    with TermProc(dbclient(db_server.port, "nethack")) as t:
        t.wait_for("Log in", "Register a new account", "Quit")
        lobby_log_in(t, ALICE, ALICE_PW)
        t.wait_for("Logged in as", ALICE)
        t.send(b"q")
        assert t.wait() == 0, t.describe()


@pytest.mark.parametrize("kex", DBCLIENT_KEX)
def test_dbclient_logs_in_with_each_of_our_kex_it_offers(server_factory, dropbear_keys, kex):
    # The server offers only `kex`, so dbclient's guess (its first choice) is right for
    # curve25519-sha256 and wrong for the libssh.org name: both paths of RFC 4253 §7.
    srv = server_factory("db-kex", ssh_overrides={"kex": [kex]})
    srv.add_user(ALICE, ALICE_PW)
    register_keys(srv, {"ed25519": dropbear_keys["ed25519"]})
    srv.start()
    argv = dbclient(srv.port, ALICE, "-i", str(dropbear_keys["ed25519"]), command="cat")
    with TermProc(argv) as t:
        term_echo_through_cat(t, f"dbclient-{kex}".encode())
    assert scrape(srv.http_port).total("ssh_kex_total", algorithm=kex) == 1
