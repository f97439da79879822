"""The OpenSSH `ssh` client (Debian 12: 9.2) against the server: password (askpass) and key
logins, exec of a game in a PTY, and every kex x cipher pair both sides support."""

from __future__ import annotations

import functools
import subprocess
from typing import Optional

import pytest

from conftest import (
    ALICE,
    ALICE_PW,
    BOB,
    BOB_PW,
    PASSWORD_OPTS,
    SshProc,
    askpass_env,
    paramiko_transport,
    password_opts,
    ssh_argv,
)

# Our list, in the order the brief names them; only those the local client knows are tested.
WANTED_KEX = [
    "sntrup761x25519-sha512@openssh.com",
    "sntrup761x25519-sha512",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "mlkem768x25519-sha256",
]
WANTED_CIPHERS = [
    "chacha20-poly1305@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
]


@functools.lru_cache(maxsize=None)
def ssh_query(what: str) -> tuple[str, ...]:
    r = subprocess.run(["ssh", "-Q", what], capture_output=True, text=True, check=True)
    return tuple(r.stdout.split())


def _pairs():
    kexes = [k for k in WANTED_KEX if k in ssh_query("kex")]
    ciphers = [c for c in WANTED_CIPHERS if c in ssh_query("cipher")]
    return [pytest.param(k, c, id=f"{k}+{c}") for k in kexes for c in ciphers]


def echo_through_cat(ssh: SshProc, token: bytes) -> None:
    """cat in a cooked PTY: the tty echoes the line and cat prints it again, so the token must
    come back twice; then Ctrl-D at the start of a line ends cat with status 0."""
    start = len(ssh.out)
    ssh.send(token + b"\n")
    after_echo = ssh.expect(token, start)
    ssh.expect(token, after_echo)
    ssh.send(b"\x04")


def refused(argv: list[str], env: Optional[dict] = None) -> SshProc:
    """Run `ssh` with its stdin closed: it must fail to log in (ssh exits 255). Returns the
    finished client, for checks of what it printed."""
    with SshProc(argv, env=env) as ssh:
        ssh.close_stdin()
        assert ssh.wait() == 255, ssh.describe()
    return ssh


def test_openssh_client_offers_the_pq_and_classical_kex_this_suite_expects():
    kex = ssh_query("kex")
    for name in ["sntrup761x25519-sha512@openssh.com", "curve25519-sha256", "curve25519-sha256@libssh.org"]:
        assert name in kex


def test_password_login_with_askpass_runs_cat_and_returns_its_exit_status(server, scripts_dir):
    argv = ssh_argv(server.port, ALICE, *PASSWORD_OPTS, "-o", "LogLevel=ERROR", command="cat")
    with SshProc(argv, env=askpass_env(scripts_dir, ALICE_PW)) as ssh:
        echo_through_cat(ssh, b"password-login-echo-1")
        assert ssh.wait() == 0, ssh.describe()


def test_password_login_works_for_a_second_account(server, scripts_dir):
    argv = ssh_argv(server.port, BOB, *PASSWORD_OPTS, "-o", "LogLevel=ERROR", command="cat")
    with SshProc(argv, env=askpass_env(scripts_dir, BOB_PW)) as ssh:
        echo_through_cat(ssh, b"bob-was-here")
        assert ssh.wait() == 0, ssh.describe()


def test_wrong_password_with_askpass_is_refused(server, scripts_dir):
    argv = ssh_argv(server.port, ALICE, *PASSWORD_OPTS, command="cat")
    ssh = refused(argv, env=askpass_env(scripts_dir, "not-alices-password"))
    assert b"Permission denied" in ssh.err, ssh.describe()


def test_another_accounts_password_is_refused(server, scripts_dir):
    argv = ssh_argv(server.port, ALICE, *PASSWORD_OPTS, command="cat")
    refused(argv, env=askpass_env(scripts_dir, BOB_PW))


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa", "rsa"])
def test_key_login_runs_cat_for_each_key_type(server, keys, kind):
    argv = ssh_argv(server.port, ALICE, "-v", key=keys[kind], command="cat")
    with SshProc(argv) as ssh:
        echo_through_cat(ssh, f"key-login-{kind}".encode())
        assert ssh.wait() == 0, ssh.describe()
        assert b"Authenticated to 127.0.0.1" in ssh.err, ssh.describe()
        assert b"using \"publickey\"" in ssh.err, ssh.describe()


def test_a_key_that_is_not_registered_is_refused(server, keys):
    ssh = refused(ssh_argv(server.port, ALICE, key=keys["stranger"], command="cat"))
    assert b"Permission denied" in ssh.err, ssh.describe()


def test_a_key_of_one_account_does_not_log_in_another(server, keys):
    refused(ssh_argv(server.port, BOB, key=keys["ed25519"], command="cat"))


@pytest.mark.parametrize("kex,cipher", _pairs())
def test_every_kex_and_cipher_pair_carries_an_echo(server, keys, kex, cipher):
    argv = ssh_argv(
        server.port,
        ALICE,
        "-v",
        "-o",
        f"KexAlgorithms={kex}",
        "-o",
        f"Ciphers={cipher}",
        key=keys["ed25519"],
        command="cat",
    )
    with SshProc(argv) as ssh:
        echo_through_cat(ssh, f"pair {kex} {cipher}".encode())
        assert ssh.wait() == 0, ssh.describe()
        err = bytes(ssh.err)
        assert f"kex: algorithm: {kex}".encode() in err, ssh.describe()
        assert b"kex: host key algorithm: ssh-ed25519" in err, ssh.describe()
        assert f"kex: server->client cipher: {cipher}".encode() in err, ssh.describe()
        assert f"kex: client->server cipher: {cipher}".encode() in err, ssh.describe()


def test_exec_of_an_unknown_command_exits_1_with_a_message(server, keys):
    argv = ssh_argv(server.port, ALICE, "-o", "LogLevel=ERROR", key=keys["ed25519"], command="no-such-game --please")
    with SshProc(argv) as ssh:
        ssh.close_stdin()
        assert ssh.wait() == 1, ssh.describe()
        assert ssh.out.strip() or ssh.err.strip(), "no message was printed"


def test_the_host_key_algorithm_offered_is_ed25519_only(server, keys):
    argv = ssh_argv(
        server.port,
        ALICE,
        "-o",
        "HostKeyAlgorithms=ecdsa-sha2-nistp256,rsa-sha2-512,rsa-sha2-256",
        key=keys["ed25519"],
        command="cat",
    )
    ssh = refused(argv)
    assert b"no matching host key type" in ssh.err, ssh.describe()


def test_after_max_auth_tries_wrong_passwords_the_server_disconnects(server, scripts_dir, tmp_path):
    max_tries = server.config_dict()["ssh"]["max_auth_tries"]
    prompts = 10
    log = tmp_path / "askpass.log"
    env = askpass_env(scripts_dir, "always-wrong")
    env["DG_E2E_ASKPASS_LOG"] = str(log)
    argv = ssh_argv(server.port, ALICE, *password_opts(prompts), command="cat")
    ssh = refused(argv, env=env)
    asked = len(log.read_text().splitlines()) if log.exists() else 0
    assert asked < prompts, f"the server let all {prompts} passwords be tried\n{ssh.describe()}"
    assert max_tries - 1 <= asked <= max_tries + 1, (
        f"disconnected after {asked} passwords, max_auth_tries is {max_tries}\n{ssh.describe()}"
    )


def test_a_full_server_tells_every_client_it_is_full(server_factory, keys):
    # A refused client has already sent its version line; if the server closed the socket with
    # that unread, the kernel would send RST and the client, still writing its KEXINIT, would
    # report "Connection reset" instead of the reason. Repeated, since that loss is a race.
    srv = server_factory("full", config_overrides={"limits": {"max_connections": 1}}).start()
    with paramiko_transport(srv.port):
        for attempt in range(10):
            ssh = refused(ssh_argv(srv.port, ALICE, key=keys["ed25519"], command="cat"))
            assert b"server full" in ssh.err, f"attempt {attempt}: {ssh.describe()}"
