"""`dungeongate admin` against a running server, with real OpenSSH players in terminals: the
session list, a broadcast shown in the lobby but never inside a game, draining new games, a
kick and a lock that tell the player why, an unlock; the admin socket is private."""

from __future__ import annotations

import os
import stat

from conftest import ALICE, ALICE_PW, BOB, BOB_PW, IO_TIMEOUT, TermProc, ssh_argv, wait_until


def admin(srv, *args: str, check: bool = True):
    return srv.cli("admin", *args, check=check)


def lobby(srv, keys, user: str) -> TermProc:
    t = TermProc(ssh_argv(srv.port, user, key=keys["ed25519"]))
    t.wait_for("Logged in as:")
    return t


def session_id(srv, user: str, game: str | None = None) -> str:
    def find():
        for line in admin(srv, "sessions").stdout.splitlines()[1:]:
            cols = line.split()
            if len(cols) >= 4 and cols[1] == user and (game is None or cols[3] == game):
                return cols[0]
        return None

    sid = wait_until(find, IO_TIMEOUT)
    assert sid, admin(srv, "sessions").stdout
    return sid


def test_admin_orders_reach_the_players_and_say_why(server_factory, keys):
    srv = server_factory("admin")
    srv.add_user(ALICE, ALICE_PW, [keys["ed25519"]])
    srv.add_user(BOB, BOB_PW, [keys["ed25519"]])
    srv.start()
    try:
        sock = srv.data_dir / "admin.sock"
        mode = os.stat(sock).st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600, oct(mode)

        with lobby(srv, keys, ALICE) as alice, lobby(srv, keys, BOB) as bob:
            bob.send(b"p")  # Cat
            assert wait_until(lambda: srv.children(), IO_TIMEOUT)
            listed = admin(srv, "sessions").stdout
            assert ALICE in listed and BOB in listed and "cat" in listed, listed
            assert "127.0.0.1" in listed

            # A broadcast: in alice's lobby now; not into bob's game, but in his lobby after.
            admin(srv, "broadcast", "Restart at 18:00 \x1b[2J sharp")
            alice.wait_for("Message from the server: Restart at 18:00 [2J sharp")
            bob.send(b"in-game\r")
            assert wait_until(lambda: bytes(bob.screen.raw).count(b"in-game") >= 2, IO_TIMEOUT)
            assert b"Restart at 18:00" not in bytes(bob.screen.raw)
            bob.send(b"\x04")
            bob.wait_for("Message from the server: Restart at 18:00")

            # Draining: a start is refused with the reason; new lobbies say so; then allowed.
            assert "refused" in admin(srv, "drain", "on").stdout
            alice.send(b"p")
            alice.wait_for("maintenance")
            with lobby(srv, keys, ALICE) as another:
                another.wait_for("Maintenance: no new games")
                another.send(b"q")
                another.wait_eof()
            admin(srv, "drain", "off")
            alice.send(b"p")
            assert wait_until(lambda: srv.children(), IO_TIMEOUT), alice.describe()
            alice.send(b"\x04")
            alice.wait_for("Logged in as:")

            # A kick tells the player why and closes the connection.
            bob_id = session_id(srv, BOB)
            admin(srv, "kick", bob_id, "--reason", "flooding the lobby")
            bob.wait_raw(b"flooding the lobby")
            bob.wait_eof()

            # A lock ends the account's sessions with the reason, and keeps it out.
            admin(srv, "lock", ALICE, "--reason", "cheating")
            alice.wait_raw(b"Reason: cheating")
            alice.wait_eof()
        with TermProc(ssh_argv(srv.port, ALICE, key=keys["ed25519"])) as refused:
            refused.wait_eof()
            assert b"Logged in as" not in bytes(refused.screen.raw)
        admin(srv, "unlock", ALICE)
        with lobby(srv, keys, ALICE) as back:
            back.send(b"q")
            back.wait_eof()

        # Refusals come back as errors with the server's words.
        r = admin(srv, "lock", "nosuchplayer", check=False)
        assert r.returncode != 0 and "no account named nosuchplayer" in r.stderr, r.stderr
        r = admin(srv, "kick", "not-an-id", check=False)
        assert r.returncode != 0 and "not a session id" in r.stderr, r.stderr
        srv.assert_idle()
    finally:
        srv.stop()


def test_an_admin_kicks_and_broadcasts_from_the_lobby_menu(server_factory, keys):
    srv = server_factory("admin-lobby")
    srv.add_user(ALICE, ALICE_PW, [keys["ed25519"]])
    srv.add_user(BOB, BOB_PW, [keys["ed25519"]])
    srv.cli("user", "admin", ALICE)
    srv.start()
    try:
        with lobby(srv, keys, BOB) as bob:
            # Not an admin: no entry, and `a` does nothing.
            assert "Admin menu" not in bob.screen.text()
            with lobby(srv, keys, ALICE) as alice:
                alice.wait_for("a) Admin menu")
                alice.send(b"a")
                alice.wait_for(BOB, "127.0.0.1")
                # Broadcast from the menu: bob's lobby shows it.
                alice.send(b"b")
                alice.send(b"Lobby says hello\r")
                bob.wait_for("Message from the server: Lobby says hello")
                # Select bob's row by its letter, kick with a reason, confirm.
                row = next(
                    ln for ln in alice.screen.text().splitlines() if f" {BOB} " in f" {ln} "
                )
                letter = row.strip()[0]
                alice.send(letter.encode())
                alice.send(b"k")
                alice.send(b"menu kick test\r")
                alice.send(b"y")
                bob.wait_raw(b"menu kick test")
                bob.wait_eof()
                alice.send(b"q")
                alice.wait_for("Logged in as:")
                alice.send(b"q")
                alice.wait_eof()
        srv.assert_idle()
    finally:
        srv.stop()
