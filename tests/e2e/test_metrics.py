"""/metrics: every family of the catalogue (SPEC §3) moves when a real SSH client drives the
event it names (scrapes compared before and after); no user name ever appears in a scrape;
`promtool check metrics` accepts a scrape taken after a real session; a real Prometheus server
scrapes the endpoint and answers a query about it.

The tests of one module share a server and compare deltas, so they run one at a time (as
pytest does) and each waits until the value it expects has moved (or 20 s passed)."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request

import paramiko
import pytest

import conftest
from conftest import (
    ALICE,
    ALICE_PW,
    BOB,
    BOB_PW,
    IO_TIMEOUT,
    REPO,
    SshProc,
    channel_drain,
    channel_read_until,
    default_games,
    echo_through,
    end_cat,
    exec_in_pty,
    free_port,
    guest_lobby,
    lobby_log_in,
    lobby_play_cat,
    lobby_register,
    open_shell,
    paramiko_transport,
    ssh_argv,
    wait_until,
)
from metrics_util import (
    Scrape,
    delta,
    extra_games,
    make_game_scripts,
    poll_scrape,
    remove_game_scripts,
    scrape,
    wait_moved,
)

# Names that log in during this module; none may show up in any scrape (label cardinality and
# privacy: SPEC §3 "no user names in labels").
NEW_USER = "dave42"
NEW_USER_PW = "daves-new-pass"
GUEST = "zorkguest"
USER_NAMES = [ALICE, BOB, NEW_USER, GUEST]

# The catalogue of SPEC §3: family → (type, label names). Histogram samples add `le`.
CATALOGUE = {
    "service_up": ("gauge", {"version"}),
    "service_start_time_seconds": ("gauge", set()),
    "service_build_info": ("gauge", {"version", "commit"}),
    "ssh_connections_total": ("counter", {"status"}),
    "ssh_connections_active": ("gauge", set()),
    "connections_rejected_total": ("counter", {"reason"}),
    "ssh_connection_duration_seconds": ("histogram", set()),
    "ssh_handshake_duration_seconds": ("histogram", set()),
    "ssh_authentication_attempts_total": ("counter", {"method", "status"}),
    "ssh_bytes_transferred_total": ("counter", {"direction"}),
    "ssh_kex_total": ("counter", {"algorithm"}),
    "auth_login_attempts_total": ("counter", {"status"}),
    "auth_failed_logins_total": ("counter", {"reason"}),
    "auth_lockouts_total": ("counter", set()),
    "auth_users_registered_total": ("counter", set()),
    "auth_database_operations_total": ("counter", {"operation", "status"}),
    "auth_database_operation_duration_seconds": ("histogram", {"operation"}),
    "auth_password_hash_duration_seconds": ("histogram", set()),
    "terminal_sessions_total": ("counter", {"status"}),
    "terminal_sessions_active": ("gauge", set()),
    "terminal_session_duration_seconds": ("histogram", set()),
    "terminal_pty_operations_total": ("counter", {"operation"}),
    "terminal_data_transferred_total": ("counter", {"direction"}),
    "spectator_connections_total": ("counter", set()),
    "spectator_connections_active": ("gauge", set()),
    "spectating_sessions_active": ("gauge", set()),
    "ttyrec_bytes_written_total": ("counter", set()),
    "ttyrec_errors_total": ("counter", {"kind"}),
    "game_sessions_started_total": ("counter", {"game_id"}),
    "game_sessions_ended_total": ("counter", {"game_id", "reason"}),
    "game_session_crashes_total": ("counter", {"game_id"}),
    "game_instances_active": ("gauge", {"game_id"}),
    "game_process_spawns_total": ("counter", {"game_id", "status"}),
    "game_saves_total": ("counter", {"game_id", "operation", "status"}),
    "reactor_core_connections": ("gauge", {"core"}),
    "reactor_core_busy_ratio": ("gauge", {"core"}),
    "reactor_buffer_pool_in_use": ("gauge", {"core"}),
}


# ----------------------------------------------------------------------------------------------
# fixtures and helpers


@pytest.fixture(scope="module")
def game_scripts():
    d = make_game_scripts()
    yield d
    remove_game_scripts(d)


@pytest.fixture(scope="module")
def server(module_factory, keys, scripts_dir, game_scripts):
    """This module's server: the standard accounts and games plus the test games of
    metrics_util (crash, hupsave, slowsave, noexec). Named `server` so the conftest hygiene
    check (no game left after each test) applies to it."""
    s = module_factory(
        "metrics",
        config_overrides={"games": default_games(scripts_dir) + extra_games(game_scripts)},
    )
    s.add_user(ALICE, ALICE_PW, [keys["ed25519"]])
    s.add_user(BOB, BOB_PW)
    s.started_after = time.time()
    s.start()
    s.listening_by = time.time()
    return s


def no_user_names(s: Scrape) -> Scrape:
    for name in USER_NAMES:
        assert name not in s.text, f"user name {name!r} appears in the scrape:\n" + "\n".join(
            ln for ln in s.text.splitlines() if name in ln
        )
    return s


def sc(srv) -> Scrape:
    """A scrape of `srv`, checked for user names."""
    return no_user_names(scrape(srv.http_port))


def moved(srv, before: Scrape, name: str, by: float = 1, exact: bool = True, **labels) -> Scrape:
    return no_user_names(wait_moved(srv.http_port, before, name, by=by, exact=exact, **labels))


def until(srv, pred, what: str) -> Scrape:
    return no_user_names(poll_scrape(srv.http_port, pred, what))


def settled(srv) -> Scrape:
    """A scrape once the connections, terminals and games of earlier tests are all gone, so
    exact before/after deltas see only this test's events."""
    return until(
        srv,
        lambda s: s.value("ssh_connections_active") == 0
        and s.value("terminal_sessions_active") == 0
        and s.total("game_instances_active") == 0,
        "no connection, terminal or game left from earlier tests",
    )


def logged_in(srv, user: str = ALICE, password: str = ALICE_PW):
    t = paramiko_transport(srv.port)
    t.auth_password(user, password)
    assert t.is_authenticated()
    return t


def run_to_its_end(srv, game: str) -> None:
    """Log in, run `game` in a PTY and read until its channel closes, log out."""
    with logged_in(srv) as t:
        chan = exec_in_pty(t, game)
        channel_drain(chan)
        chan.close()


def package_version() -> str:
    text = (REPO / "Cargo.toml").read_text()
    pkg = text.split("[package]", 1)[1]
    m = re.search(r'^version\s*=\s*"([^"]+)"', pkg, re.M)
    assert m, "no version in Cargo.toml [package]"
    return m.group(1)


# ----------------------------------------------------------------------------------------------
# the catalogue as a whole


def test_every_family_of_the_catalogue_is_exported_with_its_type_and_labels(server):
    s = sc(server)
    missing = [f for f in CATALOGUE if f not in s.types]
    assert not missing, f"families missing from the scrape: {missing}"
    for fam, (kind, labels) in CATALOGUE.items():
        assert s.types[fam] == kind, f"{fam} is a {s.types[fam]}, SPEC says {kind}"
        if kind == "histogram":
            names = [f"{fam}_bucket", f"{fam}_sum", f"{fam}_count"]
            for n in names:
                assert s.series(n), f"{fam}: no {n} samples"
            for lb, _ in s.series(f"{fam}_bucket"):
                assert set(lb) == labels | {"le"}, f"{fam}_bucket labels {sorted(lb)}"
            continue
        found = s.series(fam)
        assert found, f"{fam}: no samples"
        for lb, _ in found:
            assert set(lb) == labels, f"{fam} has labels {sorted(lb)}, SPEC says {sorted(labels)}"
    for fam, kind in s.types.items():
        if kind == "counter":
            assert fam.endswith("_total"), f"counter {fam} does not end in _total"


# ----------------------------------------------------------------------------------------------
# process


def test_the_process_families_say_the_service_is_up_since_its_start_with_its_build(server):
    s = sc(server)
    (up_labels, up), = s.series("service_up")
    assert up == 1
    assert up_labels == {"version": package_version()}

    start = s.value("service_start_time_seconds")
    assert server.started_after - 1 <= start <= server.listening_by + 1, (
        f"service_start_time_seconds {start} is not between launching the server "
        f"({server.started_after}) and it listening ({server.listening_by})"
    )

    (build_labels, build), = s.series("service_build_info")
    assert build == 1
    assert build_labels["version"] == package_version()
    commit = build_labels["commit"]
    assert commit == "unknown" or re.fullmatch(r"[0-9a-f]{7,40}", commit), commit

    # A later scrape: still up, same start time.
    later = poll_scrape(server.http_port, lambda x: x is not None, "a second scrape")
    assert later.value("service_start_time_seconds") == start
    assert later.total("service_up") == 1


# ----------------------------------------------------------------------------------------------
# SSH connections


def test_an_accepted_connection_is_counted_and_active_until_it_closes(server):
    before = settled(server)
    active0 = before.value("ssh_connections_active")
    with paramiko_transport(server.port):
        after = moved(server, before, "ssh_connections_total", status="accepted")
        assert delta(before, after, "ssh_connections_total", status="failed") == 0
        assert delta(before, after, "ssh_connections_total", status="rejected") == 0
        until(
            server,
            lambda s: s.value("ssh_connections_active") == active0 + 1,
            f"ssh_connections_active {active0} + 1 while a connection is open",
        )
    until(
        server,
        lambda s: s.value("ssh_connections_active") == active0,
        f"ssh_connections_active back to {active0} after the close",
    )


def test_a_connection_over_the_limit_is_counted_as_rejected(server_factory):
    srv = server_factory("limit1", config_overrides={"limits": {"max_connections": 1}}).start()
    before = sc(srv)
    assert before.value("ssh_connections_limit") == 1
    with paramiko_transport(srv.port) as first:
        moved(srv, before, "ssh_connections_total", status="accepted")
        # The second connection is refused (the server says it is full and disconnects).
        with pytest.raises((paramiko.SSHException, EOFError, OSError)):
            with paramiko_transport(srv.port) as second:
                second.auth_none(GUEST)
        after = moved(srv, before, "ssh_connections_total", status="rejected")
        assert delta(before, after, "ssh_connections_total", status="accepted") == 1
        assert delta(before, after, "connections_rejected_total", reason="server_full") == 1
        assert after.value("ssh_connections_active") == 1, "a rejected connection became active"
        assert first.is_active(), "the admitted connection was dropped"


def test_a_peer_that_sends_garbage_or_leaves_before_the_handshake_counts_as_failed(server):
    import socket

    before = settled(server)
    with socket.create_connection(("127.0.0.1", server.port), timeout=IO_TIMEOUT) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\nthis is not ssh\r\n")
        s.settimeout(IO_TIMEOUT)
        while s.recv(65536):  # until the server closes
            pass
    mid = moved(server, before, "ssh_connections_total", status="failed")
    assert delta(before, mid, "ssh_connections_total", status="accepted") == 1

    # Connect and leave at once, before any byte of SSH.
    socket.create_connection(("127.0.0.1", server.port), timeout=IO_TIMEOUT).close()
    after = moved(server, mid, "ssh_connections_total", status="failed")
    assert delta(mid, after, "ssh_connections_total", status="accepted") == 1
    # A failed connection is a closed one too: its lifetime was observed.
    until(
        server,
        lambda s: delta(before, s, "ssh_connection_duration_seconds_count") >= 2,
        "ssh_connection_duration_seconds_count +2 for the two failed connections",
    )


def test_a_closed_connection_observes_its_duration(server):
    before = settled(server)
    with logged_in(server):
        moved(server, before, "ssh_connections_total", status="accepted")
        mid = sc(server)
        assert delta(before, mid, "ssh_connection_duration_seconds_count") == 0, (
            "an open connection's duration was observed"
        )
    after = moved(server, before, "ssh_connection_duration_seconds_count")
    assert delta(before, after, "ssh_connection_duration_seconds_bucket", le="+Inf") == 1
    assert delta(before, after, "ssh_connection_duration_seconds_sum") > 0
    assert delta(before, after, "ssh_connections_total", status="failed") == 0


def test_a_finished_handshake_observes_its_duration(server):
    before = settled(server)
    with paramiko_transport(server.port) as t:  # returns once the first key exchange is done
        after = moved(server, before, "ssh_handshake_duration_seconds_count")
        assert delta(before, after, "ssh_handshake_duration_seconds_bucket", le="+Inf") == 1
        assert delta(before, after, "ssh_handshake_duration_seconds_sum") > 0
        # A re-key is not a handshake.
        t.renegotiate_keys()
        rekeyed = moved(server, after, "ssh_kex_total")
        assert delta(after, rekeyed, "ssh_handshake_duration_seconds_count") == 0


def test_ssh_authentication_attempts_are_counted_by_method_and_outcome(server, keys):
    name = "ssh_authentication_attempts_total"

    before = settled(server)
    logged_in(server).close()
    after = moved(server, before, name, method="password", status="success")
    assert delta(before, after, name, method="password", status="failure") == 0

    before = after
    with paramiko_transport(server.port) as t, pytest.raises(paramiko.AuthenticationException):
        t.auth_password(BOB, "not-bobs-password")
    after = moved(server, before, name, method="password", status="failure")
    assert delta(before, after, name, method="password", status="success") == 0

    before = after
    with paramiko_transport(server.port) as t:
        t.auth_publickey(ALICE, paramiko.Ed25519Key.from_private_key_file(str(keys["ed25519"].private)))
        assert t.is_authenticated()
    after = moved(server, before, name, method="publickey", status="success")
    assert delta(before, after, name, method="publickey", status="failure") == 0

    before = after
    with paramiko_transport(server.port) as t, pytest.raises(paramiko.AuthenticationException):
        t.auth_publickey(ALICE, paramiko.Ed25519Key.from_private_key_file(str(keys["stranger"].private)))
    after = moved(server, before, name, method="publickey", status="failure")
    assert delta(before, after, name, method="publickey", status="success") == 0

    before = after
    with paramiko_transport(server.port) as t:
        t.auth_none(GUEST)
        assert t.is_authenticated()
    moved(server, before, name, method="none", status="success")


def test_ssh_bytes_are_counted_in_each_direction(server):
    lines = 16
    before = settled(server)
    with logged_in(server) as t:
        chan = exec_in_pty(t, "cat")
        # One line at a time (a canonical-mode tty holds at most 4 KiB of unread input).
        for i in range(lines):
            echo_through(chan, (b"%04d" % i) + b"x" * 995)  # 1000 bytes + newline
        end_cat(chan)
    sent = lines * 1001
    until(
        server,
        lambda s: delta(before, s, "ssh_bytes_transferred_total", direction="in") >= sent
        and delta(before, s, "ssh_bytes_transferred_total", direction="out") >= 2 * sent,
        f"ssh_bytes_transferred_total in >= +{sent} and out >= +{2 * sent}",
    )


def openssh_kex_algorithms() -> list[str]:
    r = subprocess.run(["ssh", "-Q", "kex"], capture_output=True, text=True, timeout=IO_TIMEOUT)
    offered = set(r.stdout.split())
    return [k for k in conftest.SERVER_KEX if k in offered]


def test_key_exchanges_are_counted_by_algorithm_for_handshakes_and_rekeys(server):
    name = "ssh_kex_total"
    for kex in openssh_kex_algorithms():
        before = settled(server)
        argv = ssh_argv(
            server.port,
            GUEST,
            "-o", f"KexAlgorithms={kex}",
            "-o", "BatchMode=yes",
            "-o", "LogLevel=ERROR",
            command="no-such-game",
        )
        with SshProc(argv) as p:
            p.close_stdin()
            p.wait()
        after = moved(server, before, name, algorithm=kex)
        others = [a for a in conftest.SERVER_KEX if a != kex]
        for a in others:
            assert delta(before, after, name, algorithm=a) == 0, f"{a} moved on a {kex} handshake"

    # paramiko for ML-KEM, which Debian 12's OpenSSH lacks; then two client re-keys.
    kex = "mlkem768x25519-sha256"
    before = settled(server)
    with paramiko_transport(server.port, kex=kex) as t:
        after = moved(server, before, name, algorithm=kex)
        t.renegotiate_keys()
        after = moved(server, after, name, algorithm=kex)
        t.renegotiate_keys()
        after = moved(server, after, name, algorithm=kex)
        assert delta(before, after, "ssh_handshake_duration_seconds_count") == 1


# ----------------------------------------------------------------------------------------------
# auth (control core)


def test_ssh_password_logins_drive_the_auth_families(server, keys):
    before = settled(server)
    logged_in(server).close()
    after = moved(server, before, "auth_login_attempts_total", status="success")
    assert delta(before, after, "auth_login_attempts_total", status="failure") == 0
    moved(server, before, "auth_password_hash_duration_seconds_count")
    after = moved(
        server, before, "auth_database_operations_total", exact=False, operation="get",
        status="success",
    )
    assert delta(before, after, "auth_database_operation_duration_seconds_count", operation="get") >= 1
    assert delta(before, after, "auth_password_hash_duration_seconds_sum") > 0

    before = after
    with paramiko_transport(server.port) as t, pytest.raises(paramiko.AuthenticationException):
        t.auth_password(BOB, "not-bobs-password")
    after = moved(server, before, "auth_failed_logins_total", reason="wrong_password")
    assert delta(before, after, "auth_login_attempts_total", status="failure") == 1
    assert delta(before, after, "auth_login_attempts_total", status="success") == 0
    moved(server, before, "auth_password_hash_duration_seconds_count")

    before = after
    with paramiko_transport(server.port) as t, pytest.raises(paramiko.AuthenticationException):
        t.auth_publickey(ALICE, paramiko.Ed25519Key.from_private_key_file(str(keys["stranger"].private)))
    after = moved(server, before, "auth_failed_logins_total", reason="wrong_key")
    assert delta(before, after, "auth_login_attempts_total", status="failure") == 1
    # Nothing in this server locks accounts yet: the family is exported and stays at zero.
    assert after.total("auth_lockouts_total") == 0


def test_registering_through_the_guest_lobby_counts_a_new_user(server):
    before = settled(server)
    with guest_lobby(server.port, GUEST) as sh:
        sh.wait_for("Register a new account")
        lobby_register(sh, NEW_USER, NEW_USER_PW)
        sh.send(b"q")
        sh.wait_eof()
    after = moved(server, before, "auth_users_registered_total")
    after = moved(server, before, "auth_database_operations_total", operation="create", status="success")
    assert delta(before, after, "auth_database_operations_total", operation="create", status="failure") == 0
    assert delta(before, after, "auth_database_operation_duration_seconds_count", operation="create") == 1
    moved(server, before, "auth_password_hash_duration_seconds_count")


def test_a_lobby_login_counts_as_a_login_attempt_and_an_unknown_name_as_a_failure(server):
    """The catalogue says auth_login_attempts_total counts lobby logins too, and
    `unknown_user` is the reason for a lobby login with a name that has no account."""
    before = settled(server)
    with guest_lobby(server.port, GUEST) as sh:
        sh.wait_for("Log in")
        lobby_log_in(sh, ALICE, ALICE_PW)
        sh.wait_for("Logged in as", ALICE)
        sh.send(b"q")
        sh.wait_eof()
    moved(server, before, "auth_password_hash_duration_seconds_count")
    after = moved(server, before, "auth_login_attempts_total", status="success")

    before = after
    with guest_lobby(server.port, GUEST) as sh:
        sh.wait_for("Log in")
        lobby_log_in(sh, "nobody77", "whatever-pass")
        sh.wait_for("Login failed")
    after = moved(server, before, "auth_failed_logins_total", reason="unknown_user")
    assert delta(before, after, "auth_login_attempts_total", status="failure") == 1


# ----------------------------------------------------------------------------------------------
# terminals


def test_a_terminal_session_drives_the_terminal_families(server):
    before = settled(server)
    active0 = before.value("terminal_sessions_active")
    with logged_in(server) as t:
        chan = exec_in_pty(t, "cat")
        moved(server, before, "terminal_pty_operations_total", operation="open")
        until(
            server,
            lambda s: s.value("terminal_sessions_active") == active0 + 1,
            "terminal_sessions_active +1 while cat runs",
        )

        mid = sc(server)
        token = b"terminal-metrics-token"
        echo_through(chan, token)
        # In: the token and newline typed; out: the tty echo (CRLF) and cat's copy.
        after = until(
            server,
            lambda s: delta(mid, s, "terminal_data_transferred_total", direction="in") >= len(token) + 1
            and delta(mid, s, "terminal_data_transferred_total", direction="out") >= 2 * len(token),
            "terminal_data_transferred_total in/out after echoing a line",
        )
        assert delta(mid, after, "terminal_pty_operations_total", operation="write") >= 1
        assert delta(mid, after, "terminal_pty_operations_total", operation="read") >= 1

        mid = sc(server)
        chan.resize_pty(width=100, height=30)
        moved(server, mid, "terminal_pty_operations_total", operation="resize")

        mid = sc(server)
        assert delta(before, mid, "terminal_sessions_total") == 0, "counted before it ended"
        assert delta(before, mid, "terminal_session_duration_seconds_count") == 0
        end_cat(chan)
    after = moved(server, before, "terminal_pty_operations_total", operation="close")
    after = moved(server, before, "terminal_sessions_total", status="success")
    assert delta(before, after, "terminal_sessions_total", status="failure") == 0
    after = moved(server, before, "terminal_session_duration_seconds_count")
    until(
        server,
        lambda s: s.value("terminal_sessions_active") == active0,
        f"terminal_sessions_active back to {active0}",
    )


# ----------------------------------------------------------------------------------------------
# games


def test_a_game_session_is_counted_from_its_spawn_to_its_normal_end(server):
    g = {"game_id": "cat"}
    before = settled(server)
    active0 = before.value("game_instances_active", **g)
    with logged_in(server) as t:
        chan = exec_in_pty(t, "cat")
        mid = moved(server, before, "game_process_spawns_total", status="success", **g)
        mid = moved(server, before, "game_sessions_started_total", **g)
        assert delta(before, mid, "game_process_spawns_total", status="failure", **g) == 0
        until(
            server,
            lambda s: s.value("game_instances_active", **g) == active0 + 1,
            "game_instances_active{cat} +1 while it runs",
        )
        echo_through(chan, b"game-metrics")
        assert delta(before, sc(server), "game_sessions_ended_total", **g) == 0
        end_cat(chan)
    after = moved(server, before, "game_sessions_ended_total", reason="normal", **g)
    for reason in ("hangup", "killed", "crashed"):
        assert delta(before, after, "game_sessions_ended_total", reason=reason, **g) == 0
    assert delta(before, after, "game_session_crashes_total", **g) == 0
    until(
        server,
        lambda s: s.value("game_instances_active", **g) == active0,
        "game_instances_active{cat} back after it ended",
    )


def test_a_game_that_cannot_be_executed_counts_a_failed_spawn(server):
    g = {"game_id": "noexec"}
    before = settled(server)
    run_to_its_end(server, "noexec")
    after = moved(server, before, "game_process_spawns_total", status="failure", **g)
    assert delta(before, after, "game_process_spawns_total", status="success", **g) == 0
    assert delta(before, after, "game_sessions_started_total", **g) == 0
    assert after.value("game_instances_active", **g) == before.value("game_instances_active", **g)


def test_a_game_killed_by_sigsegv_counts_as_a_crash(server):
    g = {"game_id": "crash"}
    before = settled(server)
    run_to_its_end(server, "crash")
    after = moved(server, before, "game_session_crashes_total", **g)
    after = moved(server, before, "game_sessions_ended_total", reason="crashed", **g)
    assert delta(before, after, "game_sessions_ended_total", reason="normal", **g) == 0
    assert delta(before, after, "game_process_spawns_total", status="success", **g) == 1
    assert delta(before, after, "game_saves_total", **g) == 0


def test_a_game_that_exits_cleanly_when_hung_up_counts_a_save(server):
    g = {"game_id": "hupsave"}
    before = settled(server)
    with logged_in(server) as t:
        chan = exec_in_pty(t, "hupsave")
        channel_read_until(chan, b"READY", bytearray())
        until(
            server,
            lambda s: s.value("game_instances_active", **g) == 1,
            "game_instances_active{hupsave} == 1",
        )
    # Leaving the block closed the connection: the server hangs the game up.
    after = moved(server, before, "game_saves_total", operation="save", status="success", **g)
    after = moved(server, before, "game_sessions_ended_total", reason="hangup", **g)
    assert delta(before, after, "game_session_crashes_total", **g) == 0
    assert delta(before, after, "game_saves_total", operation="save", status="failure", **g) == 0
    until(
        server,
        lambda s: s.value("game_instances_active", **g) == 0,
        "game_instances_active{hupsave} back to 0",
    )


# ----------------------------------------------------------------------------------------------
# cores


def test_each_core_reports_its_connections_busy_ratio_and_buffer_pool(server):
    cores = {"0", "1"}  # the test config has `cores: 2`
    before = settled(server)
    for fam in ("reactor_core_connections", "reactor_core_busy_ratio", "reactor_buffer_pool_in_use"):
        got = {lb["core"] for lb, _ in before.series(fam)}
        assert got == cores, f"{fam} has cores {sorted(got)}"
    active0 = before.value("ssh_connections_active")

    conns = []
    try:
        for _ in range(4):
            conns.append(paramiko_transport(server.port))
        during = until(
            server,
            lambda s: s.value("ssh_connections_active") == active0 + 4
            and s.total("reactor_core_connections") == active0 + 4,
            f"ssh_connections_active and the sum of reactor_core_connections == {active0 + 4}",
        )
        for lb, v in during.series("reactor_core_busy_ratio"):
            assert 0 <= v <= 1, f"busy ratio of core {lb['core']} is {v}"
        for lb, v in during.series("reactor_buffer_pool_in_use"):
            assert v >= 0 and v == int(v), f"buffer pool in use on core {lb['core']} is {v}"
        # The busy ratio is measured anew about every second: it changes while we watch.
        first = {lb["core"]: v for lb, v in during.series("reactor_core_busy_ratio")}
        until(
            server,
            lambda s: any(first[lb["core"]] != v for lb, v in s.series("reactor_core_busy_ratio")),
            "a new reactor_core_busy_ratio sample",
        )
    finally:
        for t in conns:
            t.close()
    until(
        server,
        lambda s: s.total("reactor_core_connections") == active0,
        f"reactor_core_connections back to {active0} in total",
    )


# ----------------------------------------------------------------------------------------------
# spectating


def test_the_spectator_families_move_with_a_real_watcher(server):
    before = settled(server)
    with paramiko_transport(server.port) as pt:
        pt.auth_password(ALICE, ALICE_PW)
        game = exec_in_pty(pt, "cat")
        echo_through(game, b"watched-by-one")
        with guest_lobby(server.port, GUEST) as w:
            w.send(b"w")
            w.wait_for("Games being played", "Cat")
            w.send(b"a")
            w.wait_for("watched-by-one")
            s = moved(server, before, "spectator_connections_total")
            s = until(
                server,
                lambda s: s.value("spectator_connections_active") == 1
                and s.value("spectating_sessions_active") == 1,
                "one watcher of one game",
            )
            w.send(b"q")
            until(
                server,
                lambda s: s.value("spectator_connections_active") == 0
                and s.value("spectating_sessions_active") == 0,
                "the watcher left",
            )
        end_cat(game)
    # The game was recorded.
    moved(server, before, "ttyrec_bytes_written_total", by=1, exact=False)


# ----------------------------------------------------------------------------------------------
# label hygiene, promtool, Prometheus


ALLOWED_LABELS = {"version", "commit", "status", "method", "direction", "algorithm", "reason",
                  "operation", "game_id", "core", "kind", "le"}


def test_no_label_carries_a_user_name_after_all_those_sessions(server):
    s = sc(server)
    for name, labels, _ in s.samples:
        assert set(labels) <= ALLOWED_LABELS, f"{name} has unexpected labels {sorted(labels)}"
        for v in labels.values():
            assert v not in USER_NAMES, f"{name}{labels} carries a user name"
    game_ids = {lb["game_id"] for _, lb, _ in s.samples if "game_id" in lb}
    configured = {g["id"] for g in json.loads(server.config_path.read_text())["games"]}
    assert game_ids <= configured | {"_other"}, game_ids


def _promtool() -> str:
    p = shutil.which("promtool")
    if p is None:
        pytest.skip("promtool not installed (apt-get install -y prometheus; .ci/run does)")
    return p


def test_promtool_accepts_a_scrape_taken_after_a_real_session(server):
    promtool = _promtool()
    before = settled(server)
    with logged_in(server) as t:
        sh = open_shell(t)
        sh.wait_for("Logged in as", ALICE, "Play Cat")
        lobby_play_cat(sh, server, "promtool-session", "Logged in as", ALICE, "Play Cat")
        sh.send(b"q")
        sh.wait_eof()
    after = moved(server, before, "game_sessions_ended_total", game_id="cat", reason="normal")
    r = subprocess.run(
        [promtool, "check", "metrics"],
        input=after.text,
        capture_output=True,
        text=True,
        timeout=IO_TIMEOUT,
    )
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), (
        f"promtool check metrics exited {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    )


def test_a_real_prometheus_server_scrapes_it_and_answers_a_query(server, tmp_path):
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.skip("prometheus not installed (apt-get install -y prometheus; .ci/run does)")
    port = free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  scrape_timeout: 1s\n"
        "scrape_configs:\n"
        "  - job_name: dungeongate\n"
        "    metrics_path: /metrics\n"
        "    static_configs:\n"
        f"      - targets: ['127.0.0.1:{server.http_port}']\n"
    )
    log = open(tmp_path / "prometheus.log", "wb")
    p = subprocess.Popen(
        [
            prometheus,
            f"--config.file={cfg}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=1h",
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        cwd=tmp_path,
    )
    log.close()
    conftest._OWNED_PIDS.add(p.pid)
    try:
        url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode(
            {"query": "service_up"}
        )
        last: list[object] = []

        def answered():
            if p.poll() is not None:
                raise AssertionError(
                    f"prometheus exited {p.returncode}:\n"
                    + (tmp_path / "prometheus.log").read_text()[-3000:]
                )
            try:
                with urllib.request.urlopen(url, timeout=IO_TIMEOUT) as r:
                    doc = json.loads(r.read())
            except OSError as e:
                last[:] = [e]
                return None
            last[:] = [doc]
            result = doc.get("data", {}).get("result", [])
            return result or None

        result = wait_until(answered, 60, 0.25)
        assert result, f"Prometheus never returned service_up; last answer: {last}"
        (series,) = result
        assert series["metric"]["__name__"] == "service_up"
        assert series["metric"]["job"] == "dungeongate"
        assert series["metric"]["instance"] == f"127.0.0.1:{server.http_port}"
        assert series["metric"]["version"] == package_version()
        assert float(series["value"][1]) == 1.0
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=conftest.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        conftest._OWNED_PIDS.discard(p.pid)
