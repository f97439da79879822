"""SIGHUP reloads the configuration file: games, banner and limits change live (an open lobby
redraws with them), what is fixed for the process's life is logged as needing a restart, and a
bad file is refused with the same message as at start while the running configuration stays."""

from __future__ import annotations

import os
import signal

from conftest import ALICE, ALICE_PW, IO_TIMEOUT, TermProc, ssh_argv, wait_until


def log_text(srv) -> str:
    with open(srv.log_path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def hup_and_wait_for(srv, needle: str) -> None:
    before = log_text(srv).count(needle)
    os.kill(srv.pid, signal.SIGHUP)
    assert wait_until(lambda: log_text(srv).count(needle) > before, IO_TIMEOUT), (
        f"{needle!r} never logged after SIGHUP\n{srv.log_tail()}"
    )


def lobby(srv, keys) -> TermProc:
    t = TermProc(ssh_argv(srv.port, ALICE, key=keys["ed25519"]))
    t.wait_for("Logged in as:")
    return t


def test_sighup_changes_games_and_banner_live_and_refuses_a_bad_file(server_factory, keys):
    srv = server_factory("reload")
    srv.add_user(ALICE, ALICE_PW, [keys["ed25519"]])
    srv.start()
    try:
        with lobby(srv, keys) as open_lobby:
            open_lobby.wait_for("## dg-e2e e2e")
            assert "Second cat" not in open_lobby.screen.text()

            # Live: a new banner and a new game.
            srv.config_overrides["banner"] = "## reloaded banner for $USERNAME\n"
            srv.config_overrides["games"] = srv.config_dict()["games"] + [
                {"id": "cat2", "name": "Second cat", "command": "/bin/cat"}
            ]
            srv.write_config()
            hup_and_wait_for(srv, "configuration reloaded")
            # The lobby already open redraws with them; a new one starts with them.
            open_lobby.wait_for("## reloaded banner for alice", "Second cat")
            with lobby(srv, keys) as fresh:
                fresh.wait_for("## reloaded banner for alice", "Second cat")
                fresh.send(b"q")
                fresh.wait_eof()
            # The new game plays.
            with TermProc(ssh_argv(srv.port, ALICE, key=keys["ed25519"], command="cat2")) as g:
                assert wait_until(lambda: srv.children(), IO_TIMEOUT), g.describe()
                g.send(b"via-reload\r")
                assert wait_until(lambda: bytes(g.screen.raw).count(b"via-reload") >= 2, IO_TIMEOUT)
                g.send(b"\x04")
                g.wait_eof()

            # Fixed for the process's life: logged, and the running value stays.
            srv.config_overrides["cores"] = 1
            srv.write_config()
            hup_and_wait_for(srv, "takes effect only after a restart")
            assert "key=cores" in log_text(srv), srv.log_tail()

            # A bad file: refused with the message a start would give; nothing changes.
            good = srv.config_path.read_text()
            srv.config_path.write_text(good.replace('"max_connections"', '"max_conections"', 1)
                                       if '"max_connections"' in good
                                       else good.replace('"limits": {', '"limits": {"max_connections": "lots", ', 1))
            hup_and_wait_for(srv, "configuration reload refused")
            refused = [ln for ln in log_text(srv).splitlines() if "reload refused" in ln][-1]
            assert "limits.max_connections" in refused or "max_conections" in refused, refused
            assert "String(" not in refused, refused
            srv.config_path.write_text(good)
            with lobby(srv, keys) as after:
                after.wait_for("## reloaded banner for alice", "Second cat")
                after.send(b"q")
                after.wait_eof()
            open_lobby.send(b"q")
            open_lobby.wait_eof()
        srv.assert_idle()
    finally:
        srv.stop()
