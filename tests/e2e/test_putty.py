"""PuTTY's `plink` (Debian `putty-tools`, 0.78) against the server: keys in PuTTY's own `.ppk`
format, password, a game in a PTY with echo, the guest lobby, and each of our key exchanges and
ciphers it offers. After authentication PuTTY asks "Press Return to begin session" (its
anti-spoofing pause, shown when the server sent a banner); the tests answer it."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import pytest

from conftest import ALICE, ALICE_PW, CLI_TIMEOUT, TermProc, lobby_log_in, term_echo_through_cat, lobby_play_cat
from metrics_util import scrape

pytestmark = pytest.mark.skipif(shutil.which("plink") is None, reason="plink not installed")

AUTH_BANNER = "Welcome to the dungeon (e2e)\r\n"

# PuTTY's kex preference lists (its saved-session names) that make it pick each of ours first.
PUTTY_KEX = {
    "sntrup761x25519-sha512@openssh.com": "ntru-curve25519,ecdh,dh-gex-sha1,WARN",
    "curve25519-sha256": "ecdh,ntru-curve25519,dh-gex-sha1,WARN",
}
PUTTY_CIPHERS = {
    "chacha20-poly1305@openssh.com": "chacha20,aesgcm,WARN",
    "aes256-gcm@openssh.com": "aesgcm,chacha20,WARN",
}


@pytest.fixture(scope="module")
def putty_keys(tmp_path_factory) -> dict[str, pathlib.Path]:
    """Keys made by `puttygen`, in PuTTY's .ppk format, one of each common type."""
    d = tmp_path_factory.mktemp("ppk")
    out = {}
    for kind, extra in {"ed25519": [], "ecdsa": ["-b", "256"], "rsa": ["-b", "2048"]}.items():
        path = d / f"{kind}.ppk"
        subprocess.run(
            ["puttygen", "-q", "-t", kind, *extra, "-o", str(path), "--new-passphrase", "/dev/null"],
            check=True,
            capture_output=True,
            timeout=CLI_TIMEOUT,
        )
        out[kind] = path
    return out


def register_keys(server, keys: dict[str, pathlib.Path]) -> None:
    for kind, key in keys.items():
        r = subprocess.run(["puttygen", "-L", str(key)], check=True, capture_output=True, text=True)
        pub = key.with_suffix(".pub")
        pub.write_text(r.stdout)
        server.cli("user", "key", "add", ALICE, str(pub))


def host_key_fingerprint(server) -> str:
    r = subprocess.run(
        ["ssh-keygen", "-lf", str(server.data_dir / "ssh_host_ed25519_key.pub")],
        check=True,
        capture_output=True,
        text=True,
    )
    return r.stdout.split()[1]


class Putty:
    """plink against one server, with a HOME of its own for saved sessions (algorithm lists)."""

    def __init__(self, server, home: pathlib.Path):
        self.server = server
        self.home = home
        self.fingerprint = host_key_fingerprint(server)

    def argv(self, user: str, *opts: str, command: str | None = None, kex=None, cipher=None):
        session = self.home / ".putty" / "sessions" / "dg"
        session.parent.mkdir(parents=True, exist_ok=True)
        lines = []
        if kex:
            lines.append(f"KEX={PUTTY_KEX[kex]}")
        if cipher:
            lines.append(f"Cipher={PUTTY_CIPHERS[cipher]}")
        session.write_text("".join(line + "\n" for line in lines))
        # No -batch: it would also hide the banner and the pause that a person sees.
        argv = ["plink", "-load", "dg", "-ssh", "-t", "-P", str(self.server.port)]
        argv += ["-hostkey", self.fingerprint, *opts, f"{user}@127.0.0.1"]
        return argv + ([command] if command else [])

    def run(self, argv: list[str]) -> TermProc:
        t = TermProc(argv, env=dict(os.environ, HOME=str(self.home)))
        # The banner makes PuTTY pause before the session: answer it as a person would.
        t.wait_raw(b"Press Return to begin session")
        t.send(b"\r")
        return t


@pytest.fixture(scope="module")
def putty_server(module_factory, putty_keys):
    srv = module_factory("putty", ssh_overrides={"auth_banner": AUTH_BANNER})
    srv.add_user(ALICE, ALICE_PW)
    register_keys(srv, putty_keys)
    return srv.start()


@pytest.fixture
def putty(putty_server, tmp_path) -> Putty:
    return Putty(putty_server, tmp_path)


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa", "rsa"])
def test_plink_logs_in_with_a_ppk_key_and_plays_cat_with_echo(putty, putty_keys, kind):
    with putty.run(putty.argv(ALICE, "-i", str(putty_keys[kind]), command="cat")) as t:
        term_echo_through_cat(t, f"plink-{kind}-echo".encode())


def test_plink_logs_in_with_a_password(putty):
    with putty.run(putty.argv(ALICE, "-pw", ALICE_PW, command="cat")) as t:
        term_echo_through_cat(t, b"plink-password-echo")


def test_plink_with_a_key_reaches_the_lobby_plays_and_quits(putty, putty_keys):
    with putty.run(putty.argv(ALICE, "-i", str(putty_keys["ed25519"]))) as t:
        t.wait_for("Logged in as", ALICE, "Play Cat")
        lobby_play_cat(t, putty.server, "plink-lobby-echo", "Logged in as", ALICE)
        t.send(b"q")
        assert t.wait() == 0, t.describe()


def test_plink_as_a_guest_gets_the_lobby_and_logs_in_there(putty):
    with putty.run(putty.argv("nethack")) as t:
        t.wait_for("Log in", "Register a new account", "Quit")
        lobby_log_in(t, ALICE, ALICE_PW)
        t.wait_for("Logged in as", ALICE)
        t.send(b"q")
        assert t.wait() == 0, t.describe()


@pytest.mark.parametrize("cipher", list(PUTTY_CIPHERS))
@pytest.mark.parametrize("kex", list(PUTTY_KEX))
def test_plink_logs_in_with_each_of_our_kex_and_ciphers_it_offers(putty, putty_keys, kex, cipher):
    before = scrape(putty.server.http_port).total("ssh_kex_total", algorithm=kex)
    argv = putty.argv(ALICE, "-i", str(putty_keys["ed25519"]), command="cat", kex=kex, cipher=cipher)
    with putty.run(argv) as t:
        term_echo_through_cat(t, f"plink-{kex}-{cipher}".encode())
    assert scrape(putty.server.http_port).total("ssh_kex_total", algorithm=kex) == before + 1


def test_plink_logs_in_when_the_server_offers_only_the_libssh_curve25519_name(server_factory, putty_keys, tmp_path):
    # PuTTY lists curve25519-sha256 before the @libssh.org name; only a server that offers
    # the latter alone makes it the choice.
    kex = "curve25519-sha256@libssh.org"
    srv = server_factory("putty-libssh", ssh_overrides={"kex": [kex], "auth_banner": AUTH_BANNER})
    srv.add_user(ALICE, ALICE_PW)
    register_keys(srv, {"ed25519": putty_keys["ed25519"]})
    srv.start()
    p = Putty(srv, tmp_path)
    with p.run(p.argv(ALICE, "-i", str(putty_keys["ed25519"]), command="cat")) as t:
        term_echo_through_cat(t, b"plink-libssh-echo")
    assert scrape(srv.http_port).total("ssh_kex_total", algorithm=kex) == 1
