"""SSH keys from the lobby with real clients: a player logged in with a password (OpenSSH `ssh`
in a terminal) adds a key with `k`, logs in with it, removes it, and is refused with it; a guest
whose client logged in with a key (paramiko, which offers the key straight away) is asked after
registering whether to bind it, and the new account then logs in with it through OpenSSH.

OpenSSH itself never offers a key to a guest: it sends `none` first, and `none` lets a guest
in (SPEC §1: no password for guests), so its guests are not asked."""

from __future__ import annotations

import pathlib
import subprocess

import paramiko

from conftest import (
    CLI_TIMEOUT,
    KeyPair,
    TermProc,
    _lobby_name_and_password,
    askpass_env,
    open_shell,
    paramiko_transport,
    password_opts,
    ssh_argv,
)

KIM = "kim3"
KIM_PW = "kims-pass-33"


def new_key(d: pathlib.Path, name: str) -> tuple[KeyPair, str]:
    """A fresh ed25519 key pair and its `SHA256:…` fingerprint as ssh-keygen prints it."""
    path = d / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{name}@e2e", "-f", str(path)],
        check=True,
        timeout=CLI_TIMEOUT,
    )
    listed = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(path) + ".pub"],
        check=True,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    ).stdout
    return KeyPair("ed25519", path), listed.split()[1]


def key_login(port: int, user: str, key: KeyPair) -> TermProc:
    """OpenSSH with only `key` (no password): in a terminal of its own."""
    return TermProc(ssh_argv(port, user, "-o", "LogLevel=ERROR", key=key))


def quit_lobby(t: TermProc) -> None:
    t.send(b"q")
    t.wait_eof()
    assert t.wait() == 0, t.describe()


def test_a_player_adds_a_key_with_k_logs_in_with_it_and_removes_it(server, scripts_dir, tmp_path):
    server.add_user(KIM, KIM_PW)
    key, fingerprint = new_key(tmp_path, "kim")

    # Before: the key does not log in.
    with key_login(server.port, KIM, key) as t:
        assert t.wait() == 255, t.describe()

    argv = ssh_argv(server.port, KIM, *password_opts(), "-o", "LogLevel=ERROR")
    with TermProc(argv, env=askpass_env(scripts_dir, KIM_PW)) as t:
        t.wait_for("Logged in as", KIM, "k) Manage SSH keys")
        t.send(b"k")
        t.wait_for("Your SSH keys", "No SSH keys yet")
        t.send(b"a")
        t.wait_for("Paste one public key line", "Key:")
        # Pasted as a terminal pastes it: the whole line, then Enter.
        t.send(key.public_line.encode() + b"\r")
        t.wait_for(f"Added key {fingerprint}.", "1 of at most 16", "kim@e2e")
        t.send(b"q")
        t.wait_for("Logged in as", KIM)
        quit_lobby(t)

    listed = server.cli("user", "key", "list", KIM).stdout
    assert fingerprint in listed, listed

    # The key logs in at once, without a password; and it removes itself.
    with key_login(server.port, KIM, key) as t:
        t.wait_for("Logged in as", KIM)
        t.send(b"k")
        t.wait_for(fingerprint)
        t.send(b"d")
        t.wait_for(f"Remove key 1 ({fingerprint})? y/n")
        t.send(b"y")
        t.wait_for(f"Removed key {fingerprint}.", "No SSH keys yet")
        t.send(b"q")
        t.wait_for("Logged in as", KIM)
        quit_lobby(t)

    # After: refused again.
    with key_login(server.port, KIM, key) as t:
        assert t.wait() == 255, t.describe()


def test_garbage_and_a_private_key_pasted_at_k_are_refused(server, scripts_dir, tmp_path):
    name, password = "kim4", "kims-pass-44"
    server.add_user(name, password)
    key, _ = new_key(tmp_path, "kim4")
    argv = ssh_argv(server.port, name, *password_opts(), "-o", "LogLevel=ERROR")
    with TermProc(argv, env=askpass_env(scripts_dir, password)) as t:
        t.wait_for("Logged in as", name)
        t.send(b"k")
        # Keys typed before the list arrives are dropped (one request at a time): wait.
        t.wait_for("No SSH keys yet")
        t.send(b"a")
        t.wait_for("Key:")
        t.send(b"not a key at all\r")
        t.wait_for("Not added: unsupported key type 'not'")
        # The private key file, pasted whole (LF line ends, as a terminal pastes them).
        private = key.private.read_text()
        t.send(private.encode())
        t.wait_for("That was a private key")
        body_line = private.splitlines()[1]
        assert body_line.encode() not in t.screen.raw, "the private key was echoed"
        t.send(b"\x1b")
        t.wait_for("No SSH keys yet", "=>")
        t.send(b"q")
        t.wait_for("Logged in as", name)
        quit_lobby(t)
    assert "has no SSH keys" in server.cli("user", "key", "list", name).stdout


def test_a_guest_who_logged_in_with_a_key_binds_it_when_registering(server, tmp_path):
    name, password = "lee5", "lees-pass-55"
    key, fingerprint = new_key(tmp_path, "lee")
    pkey = paramiko.Ed25519Key.from_private_key_file(str(key.private))
    with paramiko_transport(server.port) as tr:
        tr.auth_publickey("newcomer", pkey)
        assert tr.is_authenticated(), "a guest's key login did not succeed"
        sh = open_shell(tr)
        sh.wait_for("Register a new account")
        _lobby_name_and_password(sh, b"r", name, password)
        sh.wait_for("Password again:")
        sh.send(password.encode() + b"\r")
        sh.wait_for("E-mail")
        sh.send(b"\r")
        sh.wait_for(f"Bind the key {fingerprint}", "your client offered to this account? (y/n)")
        sh.send(b"y")
        sh.wait_for("Your key is bound", "Logged in as", name)
        sh.send(b"q")
        sh.wait_eof()

    assert fingerprint in server.cli("user", "key", "list", name).stdout

    # The new account logs in with it through OpenSSH, no password asked.
    with key_login(server.port, name, key) as t:
        t.wait_for("Logged in as", name)
        quit_lobby(t)


def test_a_guest_who_declines_keeps_an_account_without_keys(server, tmp_path):
    name, password = "lee6", "lees-pass-66"
    key, fingerprint = new_key(tmp_path, "lee6")
    pkey = paramiko.Ed25519Key.from_private_key_file(str(key.private))
    with paramiko_transport(server.port) as tr:
        tr.auth_publickey("newcomer", pkey)
        sh = open_shell(tr)
        _lobby_name_and_password(sh, b"r", name, password)
        sh.wait_for("Password again:")
        sh.send(password.encode() + b"\r")
        sh.wait_for("E-mail")
        sh.send(b"\r")
        sh.wait_for(f"Bind the key {fingerprint}")
        sh.send(b"n")
        sh.wait_for("Welcome", "Logged in as", name)
        sh.send(b"q")
        sh.wait_eof()
    assert "has no SSH keys" in server.cli("user", "key", "list", name).stdout
    with key_login(server.port, name, key) as t:
        assert t.wait() == 255, t.describe()
