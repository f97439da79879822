"""A public server faces hostile clients and, worse, hostile games: each test here is an attack
that worked against an earlier build, run against the real binary."""

from __future__ import annotations

import os
import pathlib
import pwd
import stat

import pytest

from conftest import (
    ALICE,
    ALICE_PW,
    channel_drain,
    default_games,
    exec_in_pty,
    exit_status,
    paramiko_transport,
)

RC_TEMPLATE = "OPTIONS=from-the-template\n"


def rc_game(scripts: pathlib.Path) -> dict:
    """`cat` with a per-user directory and an rc file made from a template, like NetHack."""
    return {
        "id": "rcgame",
        "name": "Game with an rc file",
        "command": "/bin/cat",
        "user_dir": "%D/users/%u",
        "rc_file": "%d/gamerc",
        "rc_template": RC_TEMPLATE,
    }


def play_once(port: int) -> tuple[int, bytes]:
    """alice runs `rcgame`; Ctrl-D ends cat. Returns the exit status and what was printed."""
    with paramiko_transport(port) as t:
        t.auth_password(ALICE, ALICE_PW)
        chan = exec_in_pty(t, "rcgame")
        try:
            chan.sendall(b"\x04")
        except OSError:
            pass  # refused: the channel may be closed already (what it said is still read)
        out = channel_drain(chan)
        return exit_status(chan), out


@pytest.mark.skipif(os.geteuid() != 0, reason="the attack is on root: run as root")
def test_a_symlinked_rc_file_does_not_make_root_create_its_target(games_user_factory, scripts_dir, tmp_path):
    srv = games_user_factory("rc-link", config_overrides={"games": default_games(scripts_dir) + [rc_game(scripts_dir)]})
    srv.add_user(ALICE, ALICE_PW)
    srv.start()
    games = pwd.getpwnam("games")

    # First play: the directory and the rc file are made, the games user's and private.
    status, _ = play_once(srv.port)
    assert status == 0
    user_dir = srv.data_dir / "users" / ALICE
    st = os.lstat(user_dir)
    assert stat.S_ISDIR(st.st_mode) and st.st_uid == games.pw_uid, st
    assert stat.S_IMODE(st.st_mode) == 0o700, oct(st.st_mode)
    rc = user_dir / "gamerc"
    assert rc.read_text() == RC_TEMPLATE
    assert os.lstat(rc).st_uid == games.pw_uid

    # An escaped game (the games user) swaps the rc file for a link to a file of its choice.
    victim = tmp_path / "ld.so.preload"
    rc.unlink()
    os.symlink(victim, rc)
    os.lchown(rc, games.pw_uid, games.pw_gid)

    status, out = play_once(srv.port)
    assert status != 0
    assert b"could not be started" in out, out
    assert not victim.exists(), "root followed the link and created its target"
    assert os.path.islink(rc), "the planted link was replaced instead of refused"
    log = srv.log_path.read_text()
    assert "symbolic link" in log and str(rc) in log, srv.log_tail()


def strict_limits(**kw) -> dict:
    limits = {
        "account_failures_before_backoff": 2,
        "account_backoff_max_seconds": 300,
        "source_failures_before_backoff": 100000,
        "registrations_per_source_per_hour": 100000,
    }
    limits.update(kw)
    return {"limits": limits}


def test_password_guessing_on_an_account_is_held_back_unchecked(server_factory):
    from conftest import guest_lobby, lobby_log_in
    from metrics_util import scrape

    srv = server_factory("guess", config_overrides=strict_limits())
    srv.add_user(ALICE, ALICE_PW)
    srv.start()
    with guest_lobby(srv.port, "guest") as sh:
        for attempt in range(2):
            lobby_log_in(sh, ALICE, f"wrong-{attempt}")
            sh.wait_for("Login failed")
            sh.screen.screen.reset()
    # Another connection (a lobby allows three failures per connection): the third wrong one
    # starts the hold-back; from then on even the right password is refused without being
    # checked, with the time to wait.
    with guest_lobby(srv.port, "guest") as sh:
        lobby_log_in(sh, ALICE, "wrong-2")
        sh.wait_for("Login failed")
        sh.screen.screen.reset()
        lobby_log_in(sh, ALICE, ALICE_PW)
        sh.wait_for("Too many failed attempts; try again in")
    s = scrape(srv.http_port)
    assert s.total("auth_failed_logins_total", reason="throttled") >= 1
    assert s.total("auth_lockouts_total") >= 1
    # Over SSH too, while the hold-back lasts.
    import paramiko

    with paramiko_transport(srv.port) as t, pytest.raises(paramiko.AuthenticationException):
        t.auth_password(ALICE, ALICE_PW)


def test_registrations_per_address_are_capped(server_factory):
    from conftest import guest_lobby, lobby_register

    srv = server_factory("reg-rate", config_overrides=strict_limits(registrations_per_source_per_hour=1))
    srv.start()
    with guest_lobby(srv.port, "guest") as sh:
        lobby_register(sh, "first1", "first-pass-1")
    with guest_lobby(srv.port, "guest") as sh:
        sh.wait_for("Register")
        sh.send(b"r")
        sh.wait_for("Name:")
        sh.send(b"second2\r")
        sh.wait_for("Password:")
        sh.send(b"second-pass-2\r")
        sh.wait_for("Password again:")
        sh.send(b"second-pass-2\r")
        sh.wait_for("E-mail")
        sh.send(b"\r")
        sh.wait_for("Too many new accounts from your address")
    assert "second2" not in srv.cli("user", "list").stdout


def test_an_over_long_password_is_refused_before_hashing(server_factory):
    from metrics_util import scrape
    import paramiko

    srv = server_factory("long-pw", config_overrides=strict_limits())
    srv.add_user(ALICE, ALICE_PW)
    srv.start()
    with paramiko_transport(srv.port) as t, pytest.raises(paramiko.AuthenticationException):
        t.auth_password(ALICE, "x" * 5000)
    s = scrape(srv.http_port)
    assert s.total("auth_failed_logins_total", reason="too_long") == 1
    assert s.total("auth_password_hash_duration_seconds_count") == 0


def test_a_second_copy_of_a_running_game_is_refused_naming_it(server):
    from conftest import channel_read_until, echo_through, end_cat

    with paramiko_transport(server.port) as t1:
        t1.auth_password(ALICE, ALICE_PW)
        first = exec_in_pty(t1, "cat")
        echo_through(first, b"first-copy")
        # Another connection, same account, same game: refused while the first runs.
        with paramiko_transport(server.port) as t2:
            t2.auth_password(ALICE, ALICE_PW)
            second = exec_in_pty(t2, "cat")
            out = channel_drain(second)
            assert b"You already have Cat running" in out, out
            assert exit_status(second) == 1
        assert len(server.children()) == 1, server.children()
        # A different game is fine, and so is the same one once the first has ended.
        end_cat(first)
    with paramiko_transport(server.port) as t3:
        t3.auth_password(ALICE, ALICE_PW)
        again = exec_in_pty(t3, "cat")
        echo_through(again, b"after-the-first-ended")
        end_cat(again)


def test_one_connection_runs_one_game_at_a_time(server):
    from conftest import echo_through, end_cat

    with paramiko_transport(server.port) as t:
        t.auth_password(ALICE, ALICE_PW)
        first = exec_in_pty(t, "cat")
        echo_through(first, b"one-game")
        second = exec_in_pty(t, "sizeloop")
        out = channel_drain(second)
        assert b"One game per connection" in out, out
        assert exit_status(second) == 1
        end_cat(first)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start the server as another user")
def test_started_as_a_plain_user_external_games_need_an_explicit_opt_in(dg_bin, scripts_dir):
    import json
    import shutil
    import subprocess
    import tempfile

    from conftest import default_games, free_port, server_env

    root = pathlib.Path(tempfile.mkdtemp(prefix="dg-e2e-nonroot-"))
    try:
        os.chmod(root, 0o777)
        cfg = {
            "data_dir": str(root / "data"),
            "cores": 1,
            "ssh": {"listen": f"127.0.0.1:{free_port()}"},
            "http": {"listen": f"127.0.0.1:{free_port()}"},
            "games": default_games(scripts_dir),
        }
        config = root / "config.yaml"
        config.write_text(json.dumps(cfg))
        os.chmod(config, 0o644)
        # A copy nobody can run, wherever the checkout (and its target dir) lives.
        binary = root / "dungeongate"
        shutil.copy(dg_bin, binary)
        os.chmod(binary, 0o755)
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        r = subprocess.run(
            [*as_nobody, str(binary), "serve", "--config", str(config)],
            env=server_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode != 0
        assert "games_as_server_user" in r.stderr, r.stderr
        assert "host key" in r.stderr, r.stderr
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ----------------------------------------------------------------------------------------------
# who may connect: per-source limits, penalties, allow/deny, MaxStartups, login grace
#
# Every 127.x.y.z address is a different source to the server, so each test picks its own.


def raw_connect(port: int, source: str):
    import socket

    return socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(source, 0))


def refusal_text(port: int, source: str) -> bytes:
    from conftest import server_says

    return server_says(port, source)


def no_exemptions(**kw) -> dict:
    limits = {"exempt": []}
    limits.update(kw)
    return {"limits": limits}


def test_unauthenticated_connections_per_source_are_capped_and_others_still_get_in(server_factory):
    from metrics_util import scrape

    srv = server_factory("per-source", config_overrides=no_exemptions(per_source_max_unauthenticated=3))
    srv.add_user(ALICE, ALICE_PW)
    srv.start()
    held = [raw_connect(srv.port, "127.0.0.5") for _ in range(3)]
    try:
        for s in held:
            s.recv(256)  # the version line: each was admitted
        assert b"too many logins in progress from your address" in refusal_text(srv.port, "127.0.0.5")
        with paramiko_transport(srv.port, source="127.0.0.6") as t:
            t.auth_password(ALICE, ALICE_PW)
            assert t.is_authenticated()
    finally:
        for s in held:
            s.close()
    s = scrape(srv.http_port)
    assert s.total("connections_rejected_total", reason="per_source_unauthenticated") == 1


def test_a_source_that_fails_to_log_in_is_refused_for_a_while(server_factory):
    import paramiko

    from metrics_util import scrape

    srv = server_factory("penalty", config_overrides=no_exemptions(penalty_seconds=60))
    srv.add_user(ALICE, ALICE_PW)
    srv.start()
    with paramiko_transport(srv.port, source="127.0.0.7") as t:
        with pytest.raises(paramiko.AuthenticationException):
            t.auth_password(ALICE, "not-the-password")
    # The connection has to end before the penalty starts: poll the refusal.
    from conftest import wait_until

    refused = wait_until(
        lambda: b"your address is refused for" in refusal_text(srv.port, "127.0.0.7"), 30
    )
    assert refused, "the failing source was not penalized"
    with paramiko_transport(srv.port, source="127.0.0.8") as t:
        t.auth_password(ALICE, ALICE_PW)
        assert t.is_authenticated()
    assert scrape(srv.http_port).total("connections_rejected_total", reason="penalized") >= 1


def test_deny_and_allow_lists(server_factory):
    srv = server_factory(
        "lists",
        config_overrides=no_exemptions(deny=["127.0.0.9"], allow=["127.0.0.0/29", "127.0.0.9/32"]),
    )
    srv.add_user(ALICE, ALICE_PW)
    srv.start()
    assert b"not accepted here" in refusal_text(srv.port, "127.0.0.9"), "deny wins over allow"
    assert b"not accepted here" in refusal_text(srv.port, "127.0.0.10"), "not on the allow list"
    with paramiko_transport(srv.port, source="127.0.0.3") as t:
        t.auth_password(ALICE, ALICE_PW)
        assert t.is_authenticated()


def test_max_startups_refuses_new_connections_while_others_are_still_logging_in(server_factory):
    from metrics_util import scrape

    srv = server_factory("startups", config_overrides=no_exemptions(max_startups="2"))
    srv.add_user(ALICE, ALICE_PW)
    srv.start()
    held = [raw_connect(srv.port, f"127.0.0.{20 + i}") for i in range(2)]
    try:
        for s in held:
            s.recv(256)
        # A source that already has a connection logging in is refused...
        assert b"busy with other logins" in refusal_text(srv.port, "127.0.0.20")
        # ...one that has none still gets in: a person connects once at a time.
        with paramiko_transport(srv.port, source="127.0.0.30") as t:
            t.auth_password(ALICE, ALICE_PW)
            assert t.is_authenticated()
    finally:
        for s in held:
            s.close()
    assert scrape(srv.http_port).total("connections_rejected_total", reason="max_startups") == 1


def test_login_grace_also_ends_a_connection_that_never_starts_the_key_exchange(server_factory):
    import time

    srv = server_factory("grace", ssh_overrides={"login_grace_seconds": 2})
    srv.start()
    s = raw_connect(srv.port, "127.0.0.40")
    s.settimeout(30)
    started = time.monotonic()
    got = bytearray()
    while True:
        chunk = s.recv(4096)  # never sends a byte itself
        if not chunk:
            break
        got += chunk
    s.close()
    assert got.startswith(b"SSH-2.0-")
    assert time.monotonic() - started < 30, "the silent connection was not closed"


def test_an_idle_lobby_and_a_session_without_a_channel_are_closed(server_factory):
    import time

    from conftest import guest_lobby, wait_until

    srv = server_factory(
        "idle", config_overrides={"limits": {"lobby_idle_seconds": 2, "no_channel_idle_seconds": 2}}
    )
    srv.add_user(ALICE, ALICE_PW)
    srv.start()
    with guest_lobby(srv.port, "guest") as sh:
        sh.wait_for("Log in")
        sh.wait_eof(timeout=30)
        assert "Idle in the lobby for 2 s: goodbye." in sh.screen.text()
    with paramiko_transport(srv.port) as t:
        t.auth_password(ALICE, ALICE_PW)
        assert t.is_authenticated()
        assert wait_until(lambda: not t.is_active(), 30), "a session with no channel stayed open"


def test_locking_or_deleting_an_account_ends_its_live_sessions(server_factory):
    from conftest import BOB, BOB_PW, channel_read_until, echo_through, guest_lobby, lobby_log_in, wait_until

    srv = server_factory("revoke")
    srv.add_user(ALICE, ALICE_PW)
    srv.add_user(BOB, BOB_PW)
    srv.start()
    with paramiko_transport(srv.port) as t:
        t.auth_password(ALICE, ALICE_PW)
        game = exec_in_pty(t, "cat")
        echo_through(game, b"before-the-lock")
        assert len(srv.children()) == 1
        srv.cli("user", "lock", ALICE)
        out = bytearray()
        channel_read_until(game, b"Your account was locked or removed", out)
        assert wait_until(lambda: not srv.children(), 30), "the locked account's game still runs"
    # Logged in through the guest lobby, then deleted.
    with guest_lobby(srv.port, "guest") as sh:
        lobby_log_in(sh, BOB, BOB_PW)
        sh.wait_for("Logged in as", BOB)
        srv.cli("user", "del", BOB)
        sh.wait_eof()
        assert "Your account was locked or removed" in sh.screen.text()


def test_a_lobby_connection_gets_three_failed_logins(server):
    from conftest import guest_lobby, lobby_log_in

    with guest_lobby(server.port, "guest") as sh:
        sh.wait_for("Log in")
        for attempt in range(3):
            lobby_log_in(sh, ALICE, f"wrong-{attempt}")
            if attempt < 2:
                sh.wait_for("Login failed")
                sh.screen.screen.reset()
        sh.wait_eof()
        assert "Too many failed logins" in sh.screen.text()
