"""The options editor (`o`) with a real OpenSSH client in a terminal: a player changes a line of
her rc file and saves it, and the file on disk is the games user's, with the new line; what an
editor's escape hatch would be (`:!sh`, Ctrl-R insert file, Ctrl-T spell, Ctrl-Z, Ctrl-\\) is
typed at it and spawns nothing and touches no other file; a link planted at the rc path is
neither read nor written through."""

from __future__ import annotations

import os
import pathlib
import pwd
import stat
import threading

from conftest import (
    ALICE,
    ALICE_PW,
    TermProc,
    askpass_env,
    children_of,
    default_games,
    password_opts,
    ssh_argv,
)

RC_TEMPLATE = "OPTIONS=from-the-template\nOPTIONS=!autopickup\n"


def rc_game() -> dict:
    """`cat` with a per-user directory and an rc file made from a template, like NetHack."""
    return {
        "id": "rcgame",
        "name": "Game with options",
        "command": "/bin/cat",
        "user_dir": "%D/users/%u",
        "rc_file": "%d/gamerc",
        "rc_template": RC_TEMPLATE,
    }


def start_server(factory, scripts_dir, name: str):
    srv = factory(name, config_overrides={"games": default_games(scripts_dir) + [rc_game()]})
    srv.add_user(ALICE, ALICE_PW)
    return srv.start()


def lobby(srv, scripts_dir) -> TermProc:
    """alice (password) in the lobby of a real `ssh` in an 80x24 terminal."""
    argv = ssh_argv(srv.port, ALICE, *password_opts(), "-o", "LogLevel=ERROR")
    t = TermProc(argv, env=askpass_env(scripts_dir, ALICE_PW))
    t.wait_for("Logged in as", ALICE, "o) Edit game options")
    return t


def quit_lobby(t: TermProc) -> None:
    t.send(b"q")
    t.wait_eof()
    assert t.wait() == 0, t.describe()


def owner_ids() -> tuple[int, int]:
    """Who the player's files belong to: `games` for a root server, else the server's user."""
    if os.geteuid() == 0:
        games = pwd.getpwnam("games")
        return games.pw_uid, games.pw_gid
    return os.geteuid(), os.getegid()


def rc_path(srv) -> pathlib.Path:
    return srv.data_dir / "users" / ALICE / "gamerc"


def tree(root: pathlib.Path) -> dict[str, tuple]:
    """Every entry under `root`: kind, size, mtime, inode (to tell what changed)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = pathlib.Path(dirpath) / n
            st = os.lstat(p)
            out[str(p.relative_to(root))] = (stat.S_IFMT(st.st_mode), st.st_size, st.st_mtime_ns, st.st_ino)
    return out


def test_a_player_edits_a_line_with_o_and_the_file_on_disk_changes(games_user_factory, scripts_dir):
    srv = start_server(games_user_factory, scripts_dir, "options")
    rc = rc_path(srv)
    assert not rc.exists()
    with lobby(srv, scripts_dir) as t:
        t.send(b"o")
        # One game has an rc file: its file (the defaults, as there is none yet) at once.
        t.wait_for("Options for Game with options", "OPTIONS=from-the-template", "no Game with options options file yet")
        # Line 1 in the line editor: clear it, type the new one, Enter keeps it.
        t.send(b"e")
        t.wait_for("Line 1: OPTIONS=from-the-template")
        t.send(b"\x15OPTIONS=edited-over-ssh\r")
        t.wait_for("1  OPTIONS=edited-over-ssh", "(changed)")
        # A new line after the last one, then save.
        t.send(b"G")
        t.send(b"a")
        t.wait_for("New line 3:")
        t.send(b"# added by the e2e test\r\x1b")
        t.wait_for("3  # added by the e2e test")
        t.send(b"s")
        t.wait_for("Your Game with options options were saved.")
        t.send(b"q")
        t.wait_for("Logged in as", ALICE)
        quit_lobby(t)

    assert rc.read_text() == "OPTIONS=edited-over-ssh\nOPTIONS=!autopickup\n# added by the e2e test\n"
    uid, gid = owner_ids()
    st = os.lstat(rc)
    assert stat.S_ISREG(st.st_mode) and (st.st_uid, st.st_gid) == (uid, gid), st
    assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    d = os.lstat(rc.parent)
    assert d.st_uid == uid and stat.S_IMODE(d.st_mode) == 0o700, d
    # Only the rc file is in the directory: no temporary file left behind.
    assert sorted(os.listdir(rc.parent)) == ["gamerc"]

    # Back in: the saved file is shown; R puts the defaults back (after a y), s saves them.
    with lobby(srv, scripts_dir) as t:
        t.send(b"o")
        t.wait_for("1  OPTIONS=edited-over-ssh", "3  # added by the e2e test")
        t.send(b"R")
        t.wait_for("Replace every line with Game with options's default options? (y/n)")
        t.send(b"y")
        t.wait_for("1  OPTIONS=from-the-template", "2 lines")
        t.send(b"q")
        t.wait_for("Save your changes first? (y/n)")
        t.send(b"y")
        t.wait_for("Logged in as", "options were saved")
        quit_lobby(t)
    assert rc.read_text() == RC_TEMPLATE


class ChildWatch:
    """Polls the server's child processes in the background: any process it ever has."""

    def __init__(self, pid: int):
        self.pid = pid
        self.seen: set[str] = set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            for c in children_of(self.pid):
                self.seen.add(f"{c.pid} {c.comm}")
            self.stop.wait(0.01)

    def finish(self) -> set[str]:
        self.stop.set()
        self.thread.join(timeout=10)
        return self.seen


def test_editor_escapes_typed_at_the_editor_spawn_nothing_and_touch_no_other_file(games_user_factory, scripts_dir, tmp_path):
    srv = start_server(games_user_factory, scripts_dir, "escapes")
    rc = rc_path(srv)
    # A file to insert (nano's ^R, vim's :r) would be one like this: it must never show.
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT\n")
    with lobby(srv, scripts_dir) as t:
        t.send(b"o")
        t.wait_for("OPTIONS=from-the-template")
        t.send(b"s")
        t.wait_for("options were saved")
        before = tree(srv.data_dir)
        assert srv.children() == []
        watch = ChildWatch(srv.pid)

        # Browsing: none of these is a command. (`s` would save, `q` leave: not typed here.)
        t.send(b":!")
        t.wait_for("That key does nothing here")
        # Ctrl-R (nano: insert file), Ctrl-T (nano: spell, a command), Ctrl-Z (suspend),
        # Ctrl-\ (quit), Ctrl-X, Ctrl-E, Ctrl-O: not even keys to the editor.
        t.send(b"\x12\x14\x1a\x1c\x18\x05\x0f")
        # vim's `:r FILE` starts the same way; Enter then edits line 1: leave it.
        t.send(b":r\r")
        t.wait_for("Line 1:")
        t.send(b"\x03")
        t.wait_for("j/k move  e edit")

        # Typing a line: the same keys are text (printable ones) or nothing.
        t.send(b"e\x15:!sh\x12\x14\x1a\x1c !id; ^Rsecret.txt\x18\x05\x0f\r")
        t.wait_for("1  :!sh !id; ^Rsecret.txt")
        t.send(b"s")
        t.wait_for("options were saved")
        seen = watch.finish()
        assert not seen, f"the server started processes: {seen}"
        assert "TOP-SECRET-CONTENT" not in t.screen.text()
        t.send(b"q")
        t.wait_for("Logged in as", ALICE)
        quit_lobby(t)

    assert rc.read_text() == ":!sh !id; ^Rsecret.txt\nOPTIONS=!autopickup\n"
    after = tree(srv.data_dir)
    changed = {
        p for p in set(before) | set(after)
        if before.get(p) != after.get(p)
    }
    # The rc file was replaced (a new inode, so its directory's times changed too, but it is
    # the same directory); the account store may note a reader; nothing else under the data
    # dir appeared, went or changed.
    user_dir = str(rc.parent.relative_to(srv.data_dir))
    assert before[user_dir][::3] == after[user_dir][::3], (before[user_dir], after[user_dir])
    allowed = {str(rc.relative_to(srv.data_dir)), user_dir}
    unexpected = {p for p in changed - allowed if not p.endswith(".mdb")}
    assert not unexpected, unexpected
    assert secret.read_text() == "TOP-SECRET-CONTENT\n"


def test_a_link_planted_at_the_rc_path_is_neither_read_nor_written_through(games_user_factory, scripts_dir, tmp_path):
    srv = start_server(games_user_factory, scripts_dir, "rc-link")
    rc = rc_path(srv)
    victim = tmp_path / "root-only"
    victim.write_text("root:secret\n")
    os.chmod(victim, 0o600)
    uid, gid = owner_ids()

    with lobby(srv, scripts_dir) as t:
        t.send(b"o")
        t.wait_for("OPTIONS=from-the-template")
        t.send(b"s")
        t.wait_for("options were saved")
        # While the editor is open, an escaped game swaps the file for a link.
        rc.unlink()
        os.symlink(victim, rc)
        os.lchown(rc, uid, gid)
        t.send(b"dd")
        t.send(b"s")
        t.wait_for("Not saved:", "symbolic link")
        t.send(b"q")
        t.wait_for("Save your changes first? (y/n)")
        t.send(b"n")
        t.wait_for("Logged in as", ALICE)
        # Opening it again: refused, said in the menu.
        t.send(b"o")
        t.wait_for("symbolic link")
        t.wait_for("Logged in as", ALICE)
        assert "root:secret" not in t.screen.text()
        quit_lobby(t)

    assert victim.read_text() == "root:secret\n"
    assert stat.S_IMODE(os.stat(victim).st_mode) == 0o600
    assert os.stat(victim).st_uid == os.geteuid()
    assert os.path.islink(rc), "the planted link was replaced instead of refused"
    assert sorted(os.listdir(rc.parent)) == ["gamerc"]
    log = srv.log_path.read_text()
    assert "options file refused" in log and "symbolic link" in log, srv.log_tail()
