"""/health, /health/live, /health/ready and the HTTP endpoint's edges: the JSON report when all
is well; readiness fails (503, naming the component) while the server drains and when the
account store's disk is full; liveness fails when one data core stops answering; unknown
paths, other methods and garbage; `metrics.enabled` and `metrics.path`."""

from __future__ import annotations

import os
import signal

import pytest

from conftest import (
    ALICE,
    ALICE_PW,
    IO_TIMEOUT,
    channel_read_until,
    default_games,
    exec_in_pty,
    paramiko_transport,
    wait_until,
)
from metrics_util import (
    StoppedThread,
    core_executor_tid,
    extra_games,
    failing_components,
    fill_until_enospc,
    health_report,
    http_raw,
    http_request,
    make_game_scripts,
    mount_tmpfs,
    poll_health,
    reap_exited_server,
    remove_game_scripts,
    umount,
)

READY_COMPONENTS = {"shutdown", "ssh_listener", "lmdb"}
LIVE_COMPONENTS = {"process", "core 0", "core 1"}  # the test config has `cores: 2`


@pytest.fixture(scope="module")
def game_scripts():
    d = make_game_scripts()
    yield d
    remove_game_scripts(d)


def components(doc: dict) -> set[str]:
    return {c["component"] for c in doc["checks"]}


# ----------------------------------------------------------------------------------------------
# all is well


def test_health_live_and_ready_are_200_with_the_report_when_all_is_well(server):
    r = http_request(server.http_port, "/health")
    assert r.status == 200, str(r)
    assert r.headers.get("content-type", "").startswith("application/json"), str(r)
    assert r.json()["status"] == "ok", str(r)
    if "checks" in r.json():
        health_report(r)

    live = health_report(http_request(server.http_port, "/health/live"))
    assert live["status"] == "ok"
    assert LIVE_COMPONENTS <= components(live), live

    ready = health_report(http_request(server.http_port, "/health/ready"))
    assert ready["status"] == "ok"
    assert READY_COMPONENTS <= components(ready), ready


def test_head_answers_like_get_without_a_body(server):
    for path in ("/health", "/health/live", "/health/ready", "/metrics"):
        r = http_request(server.http_port, path, method="HEAD")
        assert r.status == 200, f"HEAD {path}: {r}"
        assert r.body == b"", f"HEAD {path} sent a body"


# ----------------------------------------------------------------------------------------------
# what is not served


@pytest.mark.parametrize("path", ["/", "/healthz", "/health/other", "/metrics/x", "/custom", "/.."])
def test_an_unknown_path_is_404(server, path):
    r = http_request(server.http_port, path)
    assert r.status == 404, f"GET {path}: {r}"


@pytest.mark.parametrize(
    "method,path",
    [("POST", "/metrics"), ("POST", "/health"), ("PUT", "/health/ready"), ("DELETE", "/health/live")],
)
def test_a_method_other_than_get_or_head_is_405_with_allow(server, method, path):
    r = http_request(server.http_port, path, method=method, body=b"x=1")
    assert r.status == 405, f"{method} {path}: {r}"
    allow = {m.strip() for m in r.headers.get("allow", "").split(",")}
    assert "GET" in allow, f"405 without `Allow: GET`: {r}"


@pytest.mark.parametrize(
    "raw",
    [
        b"garbage\r\n\r\n",
        b"\x00\x01\x02\xff\xfe\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nthis is no header\r\n\r\n",
        b"GET /health HTTP/9.9.9\r\n\r\n",
    ],
    ids=["words", "binary", "bad-header", "bad-version"],
)
def test_a_malformed_request_is_400(server, raw):
    answer = http_raw(server.http_port, raw)
    assert answer.startswith(b"HTTP/1.1 400 "), f"{raw!r} -> {answer[:300]!r}"
    # The endpoint still serves afterwards.
    assert http_request(server.http_port, "/health").status == 200


# ----------------------------------------------------------------------------------------------
# metrics configuration


def test_with_metrics_disabled_the_scrape_is_404_and_health_stays_200(server_factory):
    srv = server_factory(
        "nometrics", config_overrides={"metrics": {"enabled": False, "path": "/metrics"}}
    ).start()
    r = http_request(srv.http_port, "/metrics")
    assert r.status == 404, str(r)
    assert b"service_up" not in r.body
    assert http_request(srv.http_port, "/health").status == 200
    assert health_report(http_request(srv.http_port, "/health/live"))["status"] == "ok"
    assert health_report(http_request(srv.http_port, "/health/ready"))["status"] == "ok"


def test_a_custom_metrics_path_serves_the_scrape_there_and_not_at_metrics(server_factory):
    srv = server_factory(
        "custompath", config_overrides={"metrics": {"enabled": True, "path": "/custom"}}
    ).start()
    r = http_request(srv.http_port, "/custom")
    assert r.status == 200, str(r)
    assert r.headers.get("content-type", "").startswith("text/plain"), str(r)
    assert "service_up{" in r.text
    assert http_request(srv.http_port, "/metrics").status == 404
    assert http_request(srv.http_port, "/health").status == 200


# ----------------------------------------------------------------------------------------------
# readiness: draining


def test_ready_turns_503_naming_shutdown_while_the_server_drains(server_factory, scripts_dir, game_scripts):
    srv = server_factory(
        "drain",
        config_overrides={"games": default_games(scripts_dir) + extra_games(game_scripts)},
    )
    srv.add_user(ALICE, ALICE_PW)
    srv.start()
    assert health_report(http_request(srv.http_port, "/health/ready"))["status"] == "ok"

    t = paramiko_transport(srv.port)
    try:
        t.auth_password(ALICE, ALICE_PW)
        chan = exec_in_pty(t, "slowsave")  # saves for a few seconds after SIGHUP
        channel_read_until(chan, b"READY", bytearray())
        assert wait_until(srv.children, IO_TIMEOUT), "no game process"

        srv.proc.send_signal(signal.SIGTERM)
        r = poll_health(
            srv.http_port,
            "/health/ready",
            lambda r: r.status == 503,
            "503 while draining",
        )
        doc = health_report(r)
        assert failing_components(doc) == ["shutdown"], doc
        # Draining is not dying: liveness still holds while the game saves.
        live = http_request(srv.http_port, "/health/live")
        assert health_report(live)["status"] == "ok", str(live)
        assert srv.proc.poll() is None, "the server exited without waiting for the game"
    finally:
        t.close()
    status, problems = reap_exited_server(srv)
    assert status == 0, f"exit status {status} after SIGTERM"
    assert problems == [], problems


# ----------------------------------------------------------------------------------------------
# readiness: the account store's disk fills up


@pytest.mark.parametrize("probes_before", [0, 50], ids=["fresh-store", "after-50-probes"])
def test_ready_turns_503_naming_lmdb_while_the_data_disk_is_full(server_factory, probes_before):
    """Root ignores permission bits, so "unwritable" is a full disk: the data dir is a small
    tmpfs filled to ENOSPC. `after-50-probes`: the store has answered readiness probes for a
    while (as under a monitoring system) before the disk fills."""
    srv = server_factory("diskfull")
    why = mount_tmpfs(srv.data_dir, "8m")
    if why is not None:
        pytest.skip(f"cannot put the data dir on a tmpfs: {why}")
    filler = srv.data_dir / "filler"
    try:
        srv.add_user(ALICE, ALICE_PW)
        srv.start()
        for _ in range(probes_before + 1):
            assert health_report(http_request(srv.http_port, "/health/ready"))["status"] == "ok"

        filled = fill_until_enospc(filler)
        assert filled > 0
        r = poll_health(srv.http_port, "/health/ready", lambda r: r.status == 503, "503 on a full disk")
        doc = health_report(r)
        assert failing_components(doc) == ["lmdb"], doc
        # Liveness is about the process and its cores, not the disk.
        assert health_report(http_request(srv.http_port, "/health/live"))["status"] == "ok"

        os.unlink(filler)
        r = poll_health(srv.http_port, "/health/ready", lambda r: r.status == 200, "200 after freeing space")
        assert health_report(r)["status"] == "ok"
    finally:
        try:
            filler.unlink()
        except FileNotFoundError:
            pass
        problems = srv.stop()
        umount(srv.data_dir)
    assert problems == [], problems


# ----------------------------------------------------------------------------------------------
# liveness: a core stops answering


def test_live_turns_503_naming_a_core_whose_thread_is_stopped(server_factory):
    srv = server_factory("stopcore").start()
    assert health_report(http_request(srv.http_port, "/health/live"))["status"] == "ok"
    tid = core_executor_tid(srv.pid, 1)
    try:
        stopped = StoppedThread(tid).__enter__()
    except PermissionError as e:
        pytest.skip(f"ptrace is not permitted here: {e}")
    try:
        r = poll_health(srv.http_port, "/health/live", lambda r: r.status == 503, "503 with core 1 stopped")
        doc = health_report(r)
        assert failing_components(doc) == ["core 1"], doc
        # Only that thread stopped: the control core still answers; /health sums up
        # liveness and readiness, and readiness does not depend on the core's heartbeat.
        short = http_request(srv.http_port, "/health")
        assert short.status == 503 and short.json()["status"] == "fail", str(short)
        assert health_report(http_request(srv.http_port, "/health/ready"))["status"] == "ok"
    finally:
        stopped.__exit__()
    r = poll_health(srv.http_port, "/health/live", lambda r: r.status == 200, "200 after the core resumed")
    assert health_report(r)["status"] == "ok"
