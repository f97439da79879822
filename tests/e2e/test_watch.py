"""Watching with real clients: the watch menu lists games on every core; watchers (OpenSSH `ssh`
in a pyte screen) on both cores see the player's screen the moment they attach and every update
after; nothing a watcher types reaches the game; a hostile game's OSC 52, title, queries and
other non-drawing sequences never reach a watcher (the player still gets them); `q` returns to
the menu and the game's end sends watchers back with a message."""

from __future__ import annotations

import os
import pathlib
import secrets
import shutil
import tempfile
import time

import pytest

from conftest import (
    ALICE,
    ALICE_PW,
    IO_TIMEOUT,
    ParamikoShell,
    ServerFactory,
    TermProc,
    default_games,
    paramiko_transport,
    ssh_argv,
    wait_until,
)
from metrics_util import scrape
from test_faults import NETHACK, nethack_game, play_until_map

# A game that answers each line it reads with every kind of sequence a watcher must never get,
# then a visible marker.
HOSTILE_SH = r"""#!/bin/sh
printf '\033[H\033[2Jhostile game ready\r\n'
while IFS= read -r line; do
  printf '\033]52;c;Y2xpcGJvYXJk\007'          # OSC 52: write the clipboard
  printf '\033]0;pwned-title\007'              # OSC 0: window title
  printf '\033]4;1;rgb:ff/00/00\033\\'         # OSC 4: palette
  printf '\033]8;;http://evil.example/\033\\'  # OSC 8: hyperlink
  printf '\033P+q544e\033\\'                   # DCS XTGETTCAP: the terminal answers
  printf '\033_apc-payload\033\\'              # APC
  printf '\033^pm-payload\033\\'               # PM
  printf '\033[c\033[>c\033[6n\033[5n'         # DA, DA2, DSR: the terminal answers
  printf '\033[18t\033[21t'                    # window ops: the terminal answers
  printf '\033[?1000h\033[?2004h\033[?1004h'   # mouse, bracketed paste, focus events
  printf '\233c'                               # 8-bit CSI DA
  printf 'seen:%s\r\n' "$line"
done
"""

FORBIDDEN = [
    b"\x1b]",
    b"\x1bP",
    b"\x1b_",
    b"\x1b^",
    b"\x1b[c",
    b"\x1b[>c",
    b"\x1b[6n",
    b"\x1b[5n",
    b"\x1b[18t",
    b"\x1b[21t",
    b"\x1b[?1000h",
    b"\x1b[?2004h",
    b"\x1b[?1004h",
    b"\x9b",
    b"pwned-title",
    b"Y2xpcGJvYXJk",
]


NH_PLAYER = "nh" + secrets.token_hex(3)


@pytest.fixture(scope="module")
def watch_server(dg_bin, scripts_dir, keys):
    # Data dir and the hostile game where the `games` user can reach them (games run as that
    # user when the server runs as root; pytest's temp dirs are root's, mode 0700).
    root = pathlib.Path(tempfile.mkdtemp(prefix="dg-e2e-watch-"))
    os.chmod(root, 0o711)
    hostile = root / "hostile.sh"
    hostile.write_text(HOSTILE_SH)
    os.chmod(hostile, 0o755)
    games = default_games(scripts_dir)
    games.append({"id": "hostile", "name": "Hostile", "command": str(hostile)})
    if os.path.exists(NETHACK):
        games.append(nethack_game())
    factory = ServerFactory(dg_bin, root, scripts_dir)
    srv = factory("watch", config_overrides={"games": games})
    srv.add_user(ALICE, ALICE_PW, [keys["ed25519"]])
    srv.add_user(NH_PLAYER, ALICE_PW)
    srv.start()
    yield srv
    problems = factory.shutdown()
    shutil.rmtree(root, ignore_errors=True)
    assert not problems, "server teardown: " + "; ".join(problems)


def core_connections(port: int) -> dict[str, float]:
    return {lb["core"]: v for lb, v in scrape(port).series("reactor_core_connections")}


def watcher(srv, name: str = "nethack") -> TermProc:
    """A guest watcher: OpenSSH `ssh -tt` in a terminal of its own, in the lobby."""
    w = TermProc(ssh_argv(srv.port, name))
    w.wait_for("Watch games being played")
    return w


def connections_settle_at(srv, n: int) -> dict[str, float]:
    """Per-core connection counts, once they add up to `n` (earlier tests' connections may
    still be closing)."""
    counts = wait_until(
        lambda: (lambda a: a if sum(a.values()) == n else None)(core_connections(srv.http_port)),
        IO_TIMEOUT,
    )
    assert counts, f"the server never had exactly {n} connections: {core_connections(srv.http_port)}"
    return counts


def watchers_on_both_cores(srv, connections_now: int, tries: int = 24) -> list[TermProc]:
    """Watchers until one is on each core (told apart by the per-core connection counts as
    each one connects); the others are closed. `connections_now`: open before the first."""
    found: dict[str, TermProc] = {}
    spare: list[TermProc] = []
    open_now = connections_now
    for _ in range(tries):
        before = connections_settle_at(srv, open_now)
        w = watcher(srv)
        open_now += 1
        after = connections_settle_at(srv, open_now)
        core = next(c for c in after if after[c] > before.get(c, 0))
        if core in found:
            spare.append(w)
        else:
            found[core] = w
        if len(found) == 2:
            break
    for w in spare:
        w.kill()
    assert len(found) == 2, f"no watcher landed on a second core in {tries} tries"
    return list(found.values())


def start_game(srv, command: str, user: str = ALICE) -> tuple[object, ParamikoShell]:
    t = paramiko_transport(srv.port)
    t.auth_password(user, ALICE_PW)
    chan = t.open_session(timeout=IO_TIMEOUT)
    chan.get_pty(term="xterm", width=80, height=24)
    chan.exec_command(command)
    return t, ParamikoShell(chan)


def pick(w: TermProc, player: str = ALICE) -> None:
    """From the lobby: the watch menu, then the first row (the one game running)."""
    w.send(b"w")
    w.wait_for("Games being played", player)
    w.send(b"a")


def same_screen(a, b) -> bool:
    return a.screen.screen.display == b.screen.screen.display


def wait_same(player: ParamikoShell, w: TermProc, what: str) -> None:
    deadline = time.monotonic() + IO_TIMEOUT
    while not same_screen(player, w):
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"{what}: the watcher's screen differs from the player's\n--- player:\n"
                f"{player.screen.text()}\n--- watcher:\n{w.screen.text()}"
            )
        player.pump()
        time.sleep(0.05)


def test_the_watch_menu_lists_the_game_and_q_returns(watch_server):
    t, player = start_game(watch_server, "cat")
    try:
        player.send(b"listed-game\r")
        player.wait_for("listed-game")
        w = watcher(watch_server)
        try:
            w.send(b"w")
            w.wait_for("Games being played", ALICE, "Cat", "80x24")
            w.send(b"a")
            w.wait_for("listed-game")
            w.send(b"q")
            w.wait_for("Games being played")
            w.send(b"q")
            w.wait_for("Watch games being played")
        finally:
            w.kill()
    finally:
        t.close()


def test_a_hostile_games_sequences_never_reach_a_watcher(watch_server):
    t, player = start_game(watch_server, "hostile")
    try:
        player.wait_for("hostile game ready")
        w = watcher(watch_server)
        try:
            pick(w)
            w.wait_for("hostile game ready")
            mark = len(w.screen.raw)
            for i in range(3):
                player.send(f"line{i}\r".encode())
            w.wait_for("seen:line2")
            got = bytes(w.screen.raw[mark:])
            for bad in FORBIDDEN:
                assert bad not in got, f"{bad!r} reached the watcher: {got!r}"
            # The player's own terminal gets the game's bytes untouched.
            player.wait_for("seen:line2")
            assert b"\x1b]52;c;" in bytes(player.screen.raw)
            # Nothing the watcher types reaches the game.
            w.send(b"typed-by-watcher\r")
            player.send(b"after\r")
            w.wait_for("seen:after")
            assert b"typed-by-watcher" not in bytes(player.screen.raw)
        finally:
            w.kill()
    finally:
        t.close()


def test_watchers_are_sent_back_to_the_menu_when_the_game_ends(watch_server):
    t, player = start_game(watch_server, "cat")
    try:
        player.send(b"about-to-end\r")
        player.wait_for("about-to-end")
        w = watcher(watch_server)
        try:
            pick(w)
            w.wait_for("about-to-end")
            player.send(b"\x04")
            w.wait_for("The game you were watching has ended.", "Games being played")
        finally:
            w.kill()
    finally:
        t.close()


@pytest.mark.skipif(not os.path.exists(NETHACK), reason="nethack-console not installed")
def test_two_watchers_on_different_cores_see_the_players_nethack_screen_at_once_and_after(
    watch_server,
):
    t, player = start_game(watch_server, "nethack", NH_PLAYER)
    try:
        play_until_map(player)
        ws = watchers_on_both_cores(watch_server, connections_now=1)
        try:
            for w in ws:
                pick(w, NH_PLAYER)
            # At once: the screen model's picture, with no key sent to the game.
            for w in ws:
                w.wait_for("Dlvl:")
                wait_same(player, w, "on attach")
            # And every update after: search a few turns, walk about.
            for key in [b"s", b"s", b"h", b"l", b"i"]:
                player.send(key)
                time.sleep(0.3)
                player.pump()
                for w in ws:
                    wait_same(player, w, f"after {key!r}")
                if key == b"i":
                    player.send(b"\x1b")
        finally:
            for w in ws:
                w.kill()
        # Leave the game as NetHack wants: save with S.
        player.send(b"S")
        wait_until(lambda: (player.pump(), "y" in player.screen.text())[1], IO_TIMEOUT)
        player.send(b"y")
        wait_until(lambda: (player.pump(), player.eof)[1], IO_TIMEOUT)
    finally:
        t.close()
    # The recording of the session replays to the player's last screen.
    (path,) = wait_until(lambda: recordings(watch_server, NH_PLAYER, "nethack"), IO_TIMEOUT)
    final = player.screen.screen.display
    assert wait_until(lambda: replayed_screen(read_ttyrec(path)) == final, IO_TIMEOUT), (
        "the recording does not replay to the player's screen"
    )


def read_ttyrec(path: pathlib.Path) -> list[tuple[float, bytes]]:
    """Frames of a ttyrec file: our own parser (12-byte little-endian header: sec, usec, len)."""
    import struct

    data = path.read_bytes()
    frames, pos = [], 0
    while pos + 12 <= len(data):
        sec, usec, n = struct.unpack_from("<III", data, pos)
        body = data[pos + 12 : pos + 12 + n]
        assert len(body) == n, f"{path}: frame at {pos} cut short"
        frames.append((sec + usec / 1e6, body))
        pos += 12 + n
    assert pos == len(data), f"{path}: {len(data) - pos} stray bytes at the end"
    return frames


def recordings(srv, player: str, game_id: str) -> list[pathlib.Path]:
    d = srv.data_dir / "ttyrec" / player / game_id
    return sorted(d.glob("*.ttyrec")) if d.is_dir() else []


def replayed_screen(frames: list[tuple[float, bytes]], cols: int = 80, rows: int = 24):
    import pyte

    screen = pyte.Screen(cols, rows)
    stream = pyte.ByteStream(screen)
    for _, body in frames:
        stream.feed(body)
    return screen.display


def test_a_game_is_recorded_and_the_recording_replays_to_the_players_screen(watch_server):
    import subprocess

    before = set(recordings(watch_server, ALICE, "hostile"))
    t, player = start_game(watch_server, "hostile")
    try:
        player.wait_for("hostile game ready")
        for i in range(5):
            player.send(f"rec{i}\r".encode())
        player.wait_for("seen:rec4")
        player.chan.shutdown_write()  # EOF on the game's input: it ends
        wait_until(lambda: (player.pump(), player.eof)[1], IO_TIMEOUT)
    finally:
        t.close()
    new = wait_until(lambda: set(recordings(watch_server, ALICE, "hostile")) - before, IO_TIMEOUT)
    assert new, f"no recording in {watch_server.data_dir / 'ttyrec'}"
    (path,) = new
    assert path.name.endswith(".ttyrec") and path.name[4] == "-" and path.name[10] == "."
    # The file is finished once the game is reaped; wait until it holds the last line.
    wait_until(lambda: b"seen:rec4" in path.read_bytes(), IO_TIMEOUT)
    frames = read_ttyrec(path)
    assert b"alice" in frames[0][1] and b"80x24" in frames[0][1], frames[0]
    times = [ts for ts, _ in frames]
    assert times == sorted(times), "frame times go backwards"
    # As the player received it: the hostile bytes are in the recording too.
    assert b"\x1b]52;c;" in b"".join(b for _, b in frames)
    assert replayed_screen(frames) == player.screen.screen.display
    info = watch_server.cli("ttyrec", "info", str(path)).stdout
    assert "80x24" in info and "frames" in info, info
    ttyplay = shutil.which("ttyplay")
    if ttyplay:
        out = subprocess.run(
            [ttyplay, "-n", str(path)], stdin=subprocess.DEVNULL, capture_output=True, timeout=30
        ).stdout
        assert out == b"".join(b for _, b in frames)


def test_a_recording_that_cannot_be_written_stops_with_a_log_line_and_a_metric_not_the_game(
    server_factory, tmp_path
):
    # The recording directory lies under a regular file: no directory can be made there.
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file, not a directory\n")
    srv = server_factory(
        "rec-broken", config_overrides={"recording": {"dir": str(blocker / "ttyrec")}}
    )
    srv.add_user(ALICE, ALICE_PW)
    srv.start()
    before = scrape(srv.http_port).total("ttyrec_errors_total")
    t, player = start_game(srv, "cat")
    try:
        player.send(b"still-playing\r")
        player.wait_for("still-playing")
        assert wait_until(
            lambda: scrape(srv.http_port).total("ttyrec_errors_total") > before, IO_TIMEOUT
        ), "no recording error counted"
        player.send(b"and-more\r")
        player.wait_for("and-more")
        player.send(b"\x04")
        wait_until(lambda: (player.pump(), player.eof)[1], IO_TIMEOUT)
    finally:
        t.close()
    assert wait_until(lambda: "recording stopped" in srv.log_tail(200), IO_TIMEOUT), srv.log_tail()
