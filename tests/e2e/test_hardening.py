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
        chan.sendall(b"\x04")
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
