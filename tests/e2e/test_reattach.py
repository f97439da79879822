"""Re-attach: a game outlives its player's dropped connection for its grace, and the player gets
it back on a new login from any core (the lobby's "r", or starting the game again); a second
login while the first is still attached may take it over; a game nobody comes back for is hung
up when its grace runs out. Real OpenSSH clients in terminals of their own (pyte screens); the
player's client is killed with SIGKILL, as a dropped laptop would leave it."""

from __future__ import annotations

import glob
import os
import pathlib
import re
import secrets
import shutil
import tempfile
import time

import pytest

from conftest import (
    ALICE,
    ALICE_PW,
    IO_TIMEOUT,
    ServerFactory,
    TermProc,
    default_games,
    ssh_argv,
    wait_until,
)
from metrics_util import scrape
from test_faults import NETHACK, nethack_game, play_until_map
from test_watch import connections_settle_at, core_connections

NH_PLAYER = "re" + secrets.token_hex(3)
GRACE_S = 120
BRIEF_GRACE_S = 2


@pytest.fixture(scope="module")
def reattach_server(dg_bin, scripts_dir, keys):
    # Where the `games` user can reach it (games run as that user under a root server).
    root = pathlib.Path(tempfile.mkdtemp(prefix="dg-e2e-reattach-"))
    os.chmod(root, 0o711)
    games = [{**g, "detach_grace_seconds": GRACE_S} for g in default_games(scripts_dir)]
    games.append(
        {"id": "brief", "name": "Brief", "command": "/bin/cat", "detach_grace_seconds": BRIEF_GRACE_S}
    )
    if os.path.exists(NETHACK):
        games.append({**nethack_game(), "detach_grace_seconds": GRACE_S})
    factory = ServerFactory(dg_bin, root, scripts_dir)
    srv = factory("reattach", config_overrides={"games": games})
    srv.add_user(ALICE, ALICE_PW, [keys["ed25519"]])
    srv.add_user(NH_PLAYER, ALICE_PW, [keys["ed25519"]])
    srv.start()
    yield srv
    # Shutdown hangs up detached games too: the factory checks that nothing outlives it.
    problems = factory.shutdown()
    shutil.rmtree(root, ignore_errors=True)
    for f in glob.glob(f"/var/games/nethack/save/*{NH_PLAYER}*"):
        os.unlink(f)
    assert not problems, "server teardown: " + "; ".join(problems)


def detached(srv) -> float:
    return scrape(srv.http_port).total("game_sessions_detached")


def client(srv, keys, user: str = ALICE, command=None) -> TermProc:
    return TermProc(ssh_argv(srv.port, user, key=keys["ed25519"], command=command))


def started(srv, p: TermProc, marker: bytes) -> None:
    """Once the game runs, type `marker` and see it come back from the game (typed earlier,
    the local terminal would echo it before the client even connects)."""
    assert wait_until(lambda: srv.children(), IO_TIMEOUT), f"no game started\n{p.describe()}"
    p.send(marker + b"\r")
    assert wait_until(lambda: bytes(p.screen.raw).count(marker) >= 2, IO_TIMEOUT), p.describe()


def test_a_second_login_takes_the_game_over_and_the_first_is_told_why(reattach_server, keys):
    srv = reattach_server
    with client(srv, keys, command="cat") as first:
        started(srv, first, b"marker-one")
        with client(srv, keys) as second:
            second.wait_for("r) Take over your game of Cat", "(open on another connection)")
            second.send(b"r")
            second.wait_for("Your game of Cat is open on another connection.")
            second.send(b"t")
            # The screen comes from the server's model of the game: cat printed nothing new.
            second.wait_for("marker-one")
            first.wait_raw(b"taken over by a new login")
            first.wait_eof()
            second.send(b"marker-two\r")
            second.wait_for("marker-two")
            # The game is the same process: ending it brings the lobby back.
            second.send(b"\x04")
            second.wait_for("Logged in as:")
            second.send(b"q")
            second.wait_eof()
    srv.assert_idle()


def test_a_game_nobody_comes_back_for_is_hung_up_when_its_grace_runs_out(reattach_server, keys):
    srv = reattach_server
    with client(srv, keys, command="brief") as p:
        started(srv, p, b"still-here")
        p.kill()
    assert wait_until(lambda: detached(srv) == 1, IO_TIMEOUT), "the game was not kept"
    assert srv.children(), "the game ended with its connection"
    assert wait_until(lambda: detached(srv) == 0, BRIEF_GRACE_S + IO_TIMEOUT)
    srv.assert_idle("after the grace")
    # And it is not offered any more.
    with client(srv, keys) as lobby:
        lobby.wait_for("Logged in as:")
        assert "Resume" not in lobby.screen.text()
        lobby.send(b"q")
        lobby.wait_eof()


def turn(screen_text: str) -> int | None:
    m = re.search(r"\bT:(\d+)", screen_text)
    return int(m.group(1)) if m else None


def on_the_other_core(srv, keys, avoid: str, open_now: int, tries: int = 24) -> TermProc:
    """A lobby login of NH_PLAYER that landed on a core other than `avoid` (the others are
    closed); `open_now`: connections open before the first."""
    for _ in range(tries):
        before = connections_settle_at(srv, open_now)
        c = client(srv, keys, NH_PLAYER)
        c.wait_for("Logged in as:")
        after = connections_settle_at(srv, open_now + 1)
        core = next(k for k in after if after[k] > before.get(k, 0))
        if core != avoid:
            return c
        c.send(b"q")
        c.wait_eof()
        c.kill()
    raise AssertionError(f"no login landed off core {avoid} in {tries} tries")


@pytest.mark.skipif(not os.path.exists(NETHACK), reason="nethack-console not installed")
def test_a_nethack_player_killed_with_sigkill_gets_the_same_game_back_from_the_other_core(
    reattach_server, keys
):
    srv = reattach_server
    open_before = sum(connections_settle_at(srv, 0).values())
    player = client(srv, keys, NH_PLAYER, command="nethack")
    try:
        play_until_map(player)
        after = connections_settle_at(srv, open_before + 1)
        first_core = next(k for k, v in after.items() if v > 0)
        # Past the welcome's --More--, search a while (a monster may interrupt: any number of
        # turns will do, the same process and turn counter must come back).
        for _ in range(10):
            if "--More--" not in player.screen.text():
                break
            player.send(b"\r")
            time.sleep(0.3)
        start = wait_until(lambda: turn(player.screen.text()), IO_TIMEOUT)
        player.send(b"20s")
        assert wait_until(
            lambda: (turn(player.screen.text()) or 0) > start, IO_TIMEOUT
        ), player.screen.text()
        # Settled: the same turn for a second.
        before_drop = None
        for _ in range(20):
            seen = turn(player.screen.text())
            time.sleep(0.5)
            if seen == turn(player.screen.text()):
                before_drop = seen
                break
        assert before_drop, player.screen.text()
        pids = {p.pid for p in srv.children() if "nethack" in p.comm}
        assert pids, f"no NetHack under the server: {srv.children()}"
    finally:
        player.kill()  # SIGKILL: the client says nothing, the TCP connection just ends
    assert wait_until(lambda: detached(srv) == 1, IO_TIMEOUT), "the game was not kept"
    assert pids <= {p.pid for p in srv.children()}, "NetHack ended with the connection"

    began = time.monotonic()
    back = on_the_other_core(srv, keys, first_core, open_now=0)
    with back:
        back.wait_for("r) Resume your game of NetHack")
        asked = time.monotonic()
        back.send(b"r")
        back.wait_for("Dlvl:", f"T:{before_drop}")
        took = time.monotonic() - asked
        print(f"re-attach: {took * 1000:.0f} ms from r to the game's screen "
              f"({time.monotonic() - began:.1f} s from the first login attempt)")
        assert {p.pid for p in srv.children() if "nethack" in p.comm} == pids, "another NetHack"
        assert detached(srv) == 0
        assert scrape(srv.http_port).total("game_sessions_reattached_total") >= 1
        # The game plays on: one more turn.
        back.send(b"s")
        wait_until(lambda: (turn(back.screen.text()) or 0) > before_drop, IO_TIMEOUT)
        # Leave as NetHack wants: save.
        back.send(b"S")
        back.wait_for("save")
        back.send(b"y")
        back.wait_for("Logged in as:", timeout=60)
        back.send(b"q")
        back.wait_eof()
    assert wait_until(lambda: not any(p.pid in pids for p in srv.children()), 60)


def test_past_the_cap_on_waiting_games_a_dropped_players_game_is_hung_up(server_factory, scripts_dir, keys):
    srv = server_factory(
        "reattach-cap",
        config_overrides={
            "games": [{**g, "detach_grace_seconds": GRACE_S} for g in default_games(scripts_dir)],
            "limits": {"max_detached_games": 0},
        },
    )
    srv.add_user(ALICE, ALICE_PW, [keys["ed25519"]])
    srv.start()
    try:
        with client(srv, keys, command="cat") as p:
            started(srv, p, b"capped")
            p.kill()
        srv.assert_idle("the game should have been hung up at once")
        assert detached(srv) == 0
    finally:
        srv.stop()
