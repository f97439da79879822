"""Faults with real processes: the server killed with SIGKILL in the middle of things."""

from __future__ import annotations

import os
import threading

import pytest

from conftest import ALICE, ALICE_PW, guest_lobby, lobby_register, paramiko_transport

ROUNDS = 20


def test_kill_9_while_accounts_are_created_loses_no_acknowledged_account(server_factory):
    """Each round: the CLI and the lobby register accounts side by side; the server is killed
    with SIGKILL mid-stream; after a restart every registration that was acknowledged (CLI
    exit 0, lobby "Logged in as") is there and the store opens cleanly."""
    srv = server_factory("kill9-reg")
    srv.add_user(ALICE, ALICE_PW)
    acknowledged: list[str] = []
    for rnd in range(ROUNDS):
        srv.start()
        stop = threading.Event()
        lock = threading.Lock()

        def cli_loop() -> None:
            i = 0
            while not stop.is_set():
                name = f"c{rnd}x{i}"
                r = srv.cli("user", "add", name, stdin="cli-pass-123\n", check=False)
                if r.returncode == 0:
                    with lock:
                        acknowledged.append(name)
                i += 1

        t = threading.Thread(target=cli_loop, daemon=True)
        t.start()
        # Lobby registrations over SSH while the CLI writes.
        for i in range(2):
            name = f"l{rnd}x{i}"
            with guest_lobby(srv.port, "guest") as sh:
                lobby_register(sh, name, "lobby-pass-1")  # waits for "Logged in as NAME"
                with lock:
                    acknowledged.append(name)
        # One more, killed while it may be in flight.
        in_flight = f"l{rnd}x9"
        try:
            with guest_lobby(srv.port, "guest") as sh:
                sh.send(b"r")
                sh.wait_for("Name:")
                sh.send(in_flight.encode() + b"\r")
                sh.wait_for("Password:")
                sh.send(b"lobby-pass-1\r")
                sh.wait_for("Password again:")
                sh.send(b"lobby-pass-1\r")
                sh.wait_for("E-mail")
                sh.send(b"\r")
                srv._kill_hard()  # SIGKILL, no warning
        except Exception:
            srv._kill_hard()
        stop.set()
        t.join(timeout=60)
    # The store opens cleanly and holds every acknowledged account.
    srv.start()
    listed = srv.cli("user", "list").stdout
    missing = [n for n in acknowledged if n not in listed]
    assert not missing, f"acknowledged but lost after kill -9: {missing}"
    assert len(acknowledged) >= ROUNDS * 2
    with paramiko_transport(srv.port) as t:
        t.auth_password(acknowledged[-1], "cli-pass-123" if acknowledged[-1].startswith("c") else "lobby-pass-1")
        assert t.is_authenticated()


NETHACK = "/usr/games/nethack"


def nethack_game() -> dict:
    return {
        "id": "nethack",
        "name": "NetHack",
        "command": NETHACK,
        "args": ["-u", "%u"],
        "user_dir": "%D/users/%u",
        "rc_file": "%d/nethackrc",
        # No intro text and no pet: fewer screens between start and play.
        "rc_template": "OPTIONS=!legacy,!autopickup,pettype:none,time\n",
        "env": {"NETHACKOPTIONS": "@%r", "HOME": "%d"},
    }


def start_nethack(port: int, user: str, password: str):
    """alice's NetHack in a PTY, until the map's status line shows (past the questions)."""
    from conftest import ParamikoShell

    t = paramiko_transport(port)
    t.auth_password(user, password)
    chan = t.open_session(timeout=30)
    chan.get_pty(term="xterm", width=80, height=24)
    chan.exec_command("nethack")
    sh = ParamikoShell(chan)
    return t, sh


def play_until_map(sh) -> None:
    """Answer whatever NetHack asks until the status line ("Dlvl:") is on screen."""
    import time

    deadline = time.monotonic() + 60
    while "Dlvl:" not in sh.screen.text():
        assert time.monotonic() < deadline, f"NetHack never showed its map:\n{sh.screen.text()}"
        text = sh.screen.text()
        if "[ynaq]" in text or "Shall I pick" in text:
            sh.send(b"y")
        elif "--More--" in text:
            sh.send(b"\r")
        elif "Is this ok?" in text:
            sh.send(b"y")
        sh.pump()


@pytest.mark.skipif(not os.path.exists(NETHACK), reason="nethack-console not installed")
@pytest.mark.skipif(os.geteuid() != 0, reason="games run as `games` only under a root server")
def test_kill_9_during_a_nethack_game_hangs_it_up_it_saves_and_the_next_start_is_clean(
    games_user_factory, scripts_dir
):
    import glob
    import secrets
    import time

    from conftest import all_processes, default_games, wait_until

    name = "nh" + secrets.token_hex(3)
    srv = games_user_factory(
        "kill9-nethack", config_overrides={"games": [nethack_game()] + default_games(scripts_dir)}
    )
    srv.add_user(name, ALICE_PW)
    srv.start()
    saves_before = set(glob.glob(f"/var/games/nethack/save/*{name}*"))
    t, sh = start_nethack(srv.port, name, ALICE_PW)
    try:
        play_until_map(sh)
        games = [p for p in srv.children() if "nethack" in p.comm]
        assert games, f"no NetHack process under the server: {srv.children()}"
        pid = games[0].pid
        srv._kill_hard()  # SIGKILL: the PTY master closes with the server
        # The kernel hangs up the game's terminal: NetHack saves and exits.
        assert wait_until(lambda: all(p.pid != pid for p in all_processes()), 60), (
            "NetHack outlived the killed server"
        )
    finally:
        t.close()
    saves = set(glob.glob(f"/var/games/nethack/save/*{name}*")) - saves_before
    assert saves, "NetHack left no save file after the hangup"
    try:
        # The next start is clean and the game comes back from its save.
        srv.start()
        t, sh = start_nethack(srv.port, name, ALICE_PW)
        try:
            sh.wait_for("Restoring save file", timeout=60)
            sh.send(b"\r")
            sh.wait_for("welcome back to NetHack", timeout=60)
        finally:
            t.close()
        assert wait_until(lambda: not srv.children(), 60), "the restored game was not hung up"
    finally:
        for f in glob.glob(f"/var/games/nethack/save/*{name}*"):
            os.unlink(f)


def test_a_full_disk_fails_registration_clearly_corrupts_nothing_and_recovers(server_factory):
    from conftest import BOB, BOB_PW
    from metrics_util import (
        fill_until_enospc,
        health_report,
        http_request,
        mount_tmpfs,
        poll_health,
        umount,
    )

    srv = server_factory("diskfull-reg")
    why = mount_tmpfs(srv.data_dir, "8m")
    if why is not None:
        pytest.skip(f"cannot put the data dir on a tmpfs: {why}")
    filler = srv.data_dir / "filler"
    try:
        srv.add_user(ALICE, ALICE_PW)
        srv.start()
        assert fill_until_enospc(filler) > 0
        poll_health(srv.http_port, "/health/ready", lambda r: r.status == 503, "503 on a full disk")
        # The lobby says so plainly; the CLI fails with a message, not a crash.
        with guest_lobby(srv.port, "guest") as sh:
            sh.send(b"r")
            sh.wait_for("Name:")
            sh.send(b"carol9\r")
            sh.wait_for("Password:")
            sh.send(b"carol-pass-1\r")
            sh.wait_for("Password again:")
            sh.send(b"carol-pass-1\r")
            sh.wait_for("E-mail")
            sh.send(b"\r")
            sh.wait_for("Could not create the account; try again later.")
        r = srv.cli("user", "add", "dave9", stdin="dave-pass-123\n", check=False)
        assert r.returncode != 0
        assert r.stderr.strip(), "the CLI failed without saying why"
        assert "panicked" not in r.stderr
        # What was there still works.
        with paramiko_transport(srv.port) as t:
            t.auth_password(ALICE, ALICE_PW)
            assert t.is_authenticated()
        # Space comes back: so do registrations and readiness.
        os.unlink(filler)
        poll_health(srv.http_port, "/health/ready", lambda r: r.status == 200, "200 after freeing space")
        with guest_lobby(srv.port, "guest") as sh:
            lobby_register(sh, "carol9", "carol-pass-1")
        srv.cli("user", "add", BOB, stdin=BOB_PW + "\n")
        listed = srv.cli("user", "list").stdout
        assert "carol9" in listed and BOB in listed and ALICE in listed
        assert health_report(http_request(srv.http_port, "/health/live"))["status"] == "ok"
    finally:
        try:
            filler.unlink()
        except FileNotFoundError:
            pass
        srv.stop()
        umount(srv.data_dir)
