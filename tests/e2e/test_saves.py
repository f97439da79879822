"""Save backups with a real server: a game saved and started again leaves a backup of the
save in the server's own directory, `dungeongate user saves` lists it, and a restore puts it
back where the game finds it (the built-in Amulet Run, and NetHack when installed)."""

from __future__ import annotations

import glob
import hashlib
import os
import pathlib
import secrets
import stat
import time

import pytest

from conftest import ALICE, ALICE_PW, ParamikoShell, paramiko_transport, wait_until
from metrics_util import scrape, wait_moved

AMULET = {
    "id": "amulet",
    "name": "Amulet Run",
    "command": "builtin:amulet",
    "args": ["--name", "%u", "--save", "%d/amulet.save"],
    "user_dir": "%D/users/%u",
    "save_file": "%d/amulet.save",
}


def start_game(port: int, user: str, password: str, game: str):
    t = paramiko_transport(port)
    t.auth_password(user, password)
    chan = t.open_session(timeout=30)
    chan.get_pty(term="xterm", width=80, height=24)
    chan.exec_command(game)
    return t, ParamikoShell(chan)


def listed(srv, name: str, game: str) -> list[list[str]]:
    """`user saves NAME` rows of `game`: [game, date, time, size, sha256 prefix, file]."""
    out = srv.cli("user", "saves", name).stdout
    rows = [line.split() for line in out.splitlines()]
    return [r for r in rows if len(r) == 6 and r[0] == game]


def sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def games_uid() -> int:
    import pwd

    return pwd.getpwnam("games").pw_uid if os.geteuid() == 0 else os.geteuid()


def test_a_saved_game_is_backed_up_at_the_next_start_listed_and_restored(games_user_factory):
    srv = games_user_factory("saves-amulet", config_overrides={"games": [AMULET]})
    srv.add_user(ALICE, ALICE_PW)
    srv.start()
    save = srv.data_dir / "users" / ALICE / "amulet.save"
    assert "has no save backups" in srv.cli("user", "saves", ALICE).stdout

    # Play and save with S: the game leaves its save and ends the session.
    t, sh = start_game(srv.port, ALICE, ALICE_PW, "amulet")
    with t:
        sh.wait_for("Find the amulet")
        sh.send(b"S")
        sh.wait_eof()
    assert wait_until(lambda: not srv.children(), 30), "the saved game did not exit"
    assert save.is_file(), "the game left no save"
    saved = sha256(save)

    # The next start backs the save up before the game resumes (and consumes) it.
    before = scrape(srv.http_port)
    t, sh = start_game(srv.port, ALICE, ALICE_PW, "amulet")
    with t:
        sh.wait_for("Welcome back")
        rows = listed(srv, ALICE, "amulet")
        assert len(rows) == 1, rows
        assert rows[0][4] == saved[:16], (rows, saved)
        wait_moved(
            srv.http_port,
            before,
            "game_saves_total",
            game_id="amulet",
            operation="backup",
            status="success",
        )
        sh.send(b"S")
        sh.wait_eof()
    assert wait_until(lambda: not srv.children(), 30), "the saved game did not exit"

    # The backups are the server's: the games user can neither enter nor change them.
    backups = srv.data_dir / "saves" / ALICE / "amulet"
    copy = backups / rows[0][5]
    assert sha256(copy) == saved
    assert stat.S_IMODE(backups.stat().st_mode) == 0o700
    assert stat.S_IMODE(copy.stat().st_mode) == 0o640
    assert copy.stat().st_uid == os.geteuid()

    # A save is there again: a restore is refused, then forced.
    r = srv.cli("user", "saves", ALICE, "--restore", "amulet", rows[0][5], check=False)
    assert r.returncode == 1 and "--force" in r.stderr, (r.stdout, r.stderr)
    r = srv.cli("user", "saves", ALICE, "--restore", "amulet", rows[0][5], "--force")
    assert "must not be playing" in r.stdout, r.stdout
    assert sha256(save) == saved
    st = save.stat()
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (games_uid(), 0o660)

    # The game finds it.
    t, sh = start_game(srv.port, ALICE, ALICE_PW, "amulet")
    with t:
        sh.wait_for("Welcome back")
    # Closing the connection hangs the game up (no grace here): it saves and exits.
    assert wait_until(lambda: not srv.children(), 30), "the restored game was not hung up"


NETHACK = "/usr/games/nethack"


def save_with_S(sh) -> None:
    """`S`, `y` in NetHack: a pending --More-- is answered first (it would swallow the `S`),
    and an `S` that drew no question is sent again."""
    deadline = time.monotonic() + 60
    sent_at = None
    while "Really save?" not in sh.screen.text():
        assert time.monotonic() < deadline, f"NetHack never asked to save:\n{sh.screen.text()}"
        if "--More--" in sh.screen.text():
            sh.send(b"\r")
            sent_at = None
        elif sent_at is None or time.monotonic() - sent_at > 5:
            sh.send(b"S")
            sent_at = time.monotonic()
        sh.pump()
    sh.send(b"y")
NETHACK_SAVES = "/var/games/nethack/save"


@pytest.mark.skipif(not os.path.exists(NETHACK), reason="nethack-console not installed")
@pytest.mark.skipif(os.geteuid() != 0, reason="games run as `games` only under a root server")
def test_a_nethack_save_is_backed_up_when_the_game_starts_again(games_user_factory):
    from test_faults import nethack_game, play_until_map

    name = "sv" + secrets.token_hex(3)
    game = {**nethack_game(), "save_file": NETHACK_SAVES + "/%uid%u.gz"}
    srv = games_user_factory("saves-nethack", config_overrides={"games": [game]})
    srv.add_user(name, ALICE_PW)
    srv.start()
    mine = lambda: glob.glob(f"{NETHACK_SAVES}/*{name}*")  # noqa: E731
    try:
        t, sh = start_game(srv.port, name, ALICE_PW, "nethack")
        with t:
            play_until_map(sh)
            save_with_S(sh)
            deadline = time.monotonic() + 60
            while not sh.eof:
                assert time.monotonic() < deadline, f"NetHack did not end:\n{sh.screen.text()}"
                if "--More--" in sh.screen.text():
                    sh.send(b"\r")
                sh.pump()
        assert wait_until(lambda: not srv.children(), 60), "NetHack did not exit after saving"
        save = pathlib.Path(f"{NETHACK_SAVES}/{games_uid()}{name}.gz")
        assert save.is_file(), f"no save where save_file says: {mine()}"
        saved = sha256(save)

        t, sh = start_game(srv.port, name, ALICE_PW, "nethack")
        with t:
            sh.wait_for("Restoring save file", timeout=60)
            rows = listed(srv, name, "nethack")
            assert len(rows) == 1 and rows[0][4] == saved[:16], (rows, saved)
            assert rows[0][5].endswith(".gz")
            copy = srv.data_dir / "saves" / name / "nethack" / rows[0][5]
            assert sha256(copy) == saved
        # Hung up on close: NetHack saves again and exits.
        assert wait_until(lambda: not srv.children(), 60), "NetHack was not hung up"
    finally:
        # A failed test may leave NetHack saving on its hangup: let it finish first.
        wait_until(lambda: not srv.children(), 60)
        for f in mine():
            os.unlink(f)
