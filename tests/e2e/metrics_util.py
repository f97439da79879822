"""Helpers for the /metrics and /health tests: a small HTTP client, a parser for the Prometheus
text format, "poll the scrape until a value moves" waits, test-only games for the game
families, and a ptrace-based way to stop exactly one data-core thread.

Like conftest.py, nothing here asserts a duration: every wait is "until X or a generous
deadline" and a deadline that passes is a failure that shows what was seen.
"""

from __future__ import annotations

import ctypes
import http.client
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Callable, Optional, TypeVar

import conftest
from conftest import IO_TIMEOUT, STOP_TIMEOUT, wait_until

# How long a metric may take to move after the event that drives it.
METRIC_TIMEOUT = 20.0
# Poll interval of those waits.
POLL = 0.1

T = TypeVar("T")

# ----------------------------------------------------------------------------------------------
# HTTP


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> dict:
        return json.loads(self.body)

    def __str__(self) -> str:
        return f"HTTP {self.status} {self.headers} {self.body[:600]!r}"


def http_request(
    port: int, path: str, method: str = "GET", body: Optional[bytes] = None, host: str = "127.0.0.1"
) -> HttpResponse:
    conn = http.client.HTTPConnection(host, port, timeout=IO_TIMEOUT)
    try:
        conn.request(method, path, body=body)
        r = conn.getresponse()
        data = r.read()
        return HttpResponse(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


def http_raw(port: int, data: bytes) -> bytes:
    """Send raw bytes, read the answer until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as s:
        s.sendall(data)
        out = bytearray()
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return bytes(out)
            out += chunk


# ----------------------------------------------------------------------------------------------
# the Prometheus text format

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')


def _parse_value(s: str) -> float:
    return {"+Inf": float("inf"), "-Inf": float("-inf"), "NaN": float("nan")}.get(s) or float(s)


def _parse_labels(s: str) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(s):
        m = _LABEL.match(s, pos)
        if not m:
            raise ValueError(f"bad label set {{{s}}} at {pos}")
        out[m.group(1)] = m.group(2).replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
        pos = m.end()
    return out


class Scrape:
    """One /metrics body, parsed: samples by (name, labels) plus # TYPE lines."""

    def __init__(self, text: str):
        self.text = text
        self.types: dict[str, str] = {}
        self.helps: dict[str, str] = {}
        self.samples: list[tuple[str, dict[str, str], float]] = []
        for line in text.splitlines():
            if not line.strip():
                continue
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(None, 3)
                self.types[name] = kind
                continue
            if line.startswith("# HELP "):
                parts = line.split(None, 3)
                self.helps[parts[2]] = parts[3] if len(parts) > 3 else ""
                continue
            if line.startswith("#"):
                continue
            m = _SAMPLE.match(line)
            if not m:
                raise ValueError(f"unparsable metrics line: {line!r}")
            labels = _parse_labels(m.group(3) or "")
            self.samples.append((m.group(1), labels, _parse_value(m.group(4))))

    def series(self, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
        """Every sample of `name` whose labels include `labels`."""
        return [
            (lb, v)
            for n, lb, v in self.samples
            if n == name and all(lb.get(k) == want for k, want in labels.items())
        ]

    def total(self, name: str, **labels: str) -> float:
        """Sum of the matching samples; fails when there is none (the family is missing)."""
        found = self.series(name, **labels)
        if not found:
            raise AssertionError(
                f"no sample {name}{labels or ''} in the scrape; samples of that name: "
                f"{[lb for n, lb, _ in self.samples if n == name]}"
            )
        return sum(v for _, v in found)

    def value(self, name: str, **labels: str) -> float:
        """The one sample with exactly these labels."""
        found = [v for n, lb, v in self.samples if n == name and lb == labels]
        if len(found) != 1:
            raise AssertionError(
                f"expected one sample {name}{labels}, found {len(found)}; samples of that "
                f"name: {[lb for n, lb, _ in self.samples if n == name]}"
            )
        return found[0]

    def family_names(self) -> set[str]:
        return set(self.types)


def scrape(port: int, path: str = "/metrics") -> Scrape:
    r = http_request(port, path)
    assert r.status == 200, f"GET {path}: {r}"
    return Scrape(r.text)


def _poll(
    fetch: Callable[[], T], pred: Callable[[T], bool], timeout: float
) -> tuple[Optional[T], Optional[T]]:
    """Fetch every POLL seconds until `pred` holds for what was fetched. Returns that (None
    when `timeout` passed first) and the last thing fetched."""
    last: list[T] = []

    def check():
        last[:] = [fetch()]
        return last[0] if pred(last[0]) else None

    found = wait_until(check, timeout, POLL)
    return found, (last[0] if last else None)


def poll_scrape(
    port: int, pred: Callable[[Scrape], bool], what: str, timeout: float = METRIC_TIMEOUT
) -> Scrape:
    """Scrape until `pred` holds; fail after `timeout` with `what`."""
    s, _ = _poll(lambda: scrape(port), pred, timeout)
    if s is None:
        raise AssertionError(f"{what}: not seen within {timeout:.0f}s of scraping")
    return s


def wait_moved(
    port: int,
    before: Scrape,
    name: str,
    by: float = 1,
    exact: bool = True,
    timeout: float = METRIC_TIMEOUT,
    **labels: str,
) -> Scrape:
    """Scrape until `name{labels}` (summed over matching series) is at least `by` above its
    value in `before`; with `exact`, it must then be exactly `by` above."""
    start = before.total(name, **labels)
    seen: list[float] = [start]

    def moved(s: Scrape) -> bool:
        seen[0] = s.total(name, **labels)
        return seen[0] >= start + by

    try:
        after = poll_scrape(port, moved, f"{name}{labels}", timeout)
    except AssertionError:
        raise AssertionError(
            f"{name}{labels} stayed at {seen[0]:g} (was {start:g}, wanted +{by:g}) "
            f"for {timeout:.0f}s"
        ) from None
    if exact:
        got = after.total(name, **labels) - start
        assert got == by, f"{name}{labels} moved by {got:g}, expected exactly {by:g}"
    return after


def delta(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    return after.total(name, **labels) - before.total(name, **labels)


# ----------------------------------------------------------------------------------------------
# health JSON

CHECK_KEYS = {"component", "status", "details", "duration_ms"}


def health_report(r: HttpResponse) -> dict:
    """Validate the `{status, checks:[{component,status,details,duration_ms}]}` shape."""
    assert r.headers.get("content-type", "").startswith("application/json"), str(r)
    doc = r.json()
    assert set(doc) == {"status", "checks"}, f"keys {sorted(doc)}: {r}"
    assert doc["status"] in ("ok", "fail"), str(r)
    assert isinstance(doc["checks"], list) and doc["checks"], str(r)
    for c in doc["checks"]:
        assert set(c) == CHECK_KEYS, f"check keys {sorted(c)}: {r}"
        assert isinstance(c["component"], str) and c["component"], str(r)
        assert c["status"] in ("ok", "fail"), str(r)
        assert isinstance(c["details"], str), str(r)
        assert isinstance(c["duration_ms"], (int, float)) and c["duration_ms"] >= 0, str(r)
    # The overall status is the conjunction of the checks, and the HTTP status follows it.
    all_ok = all(c["status"] == "ok" for c in doc["checks"])
    assert doc["status"] == ("ok" if all_ok else "fail"), str(r)
    assert r.status == (200 if all_ok else 503), str(r)
    return doc


def failing_components(doc: dict) -> list[str]:
    return [c["component"] for c in doc["checks"] if c["status"] != "ok"]


def poll_health(
    port: int, path: str, pred: Callable[[HttpResponse], bool], what: str,
    timeout: float = METRIC_TIMEOUT,
) -> HttpResponse:
    r, last = _poll(lambda: http_request(port, path), pred, timeout)
    if r is None:
        raise AssertionError(f"{path}: {what} not seen within {timeout:.0f}s; last: {last}")
    return r


# ----------------------------------------------------------------------------------------------
# test-only games

CRASH_SH = """#!/bin/sh
# Test-only game: dies on SIGSEGV at once (a crash, as the server sees it).
kill -SEGV $$
"""

HUPSAVE_SH = """#!/bin/sh
# Test-only game: exits cleanly when hung up (the server counts that as a hang-up save).
trap 'exit 0' HUP
echo READY
while :; do sleep 1; done
"""

SLOWSAVE_SH = """#!/bin/sh
# Test-only game: takes a few seconds to "save" after SIGHUP, then exits cleanly.
trap 'sleep 4; exit 0' HUP
echo READY
while :; do sleep 1; done
"""

NOEXEC_SH = """#!/bin/sh
# Test-only game whose file is not executable: spawning it must fail.
echo never
"""


def make_game_scripts() -> pathlib.Path:
    """World-readable dir with the test games (games run as `games` when the server is root)."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="dg-e2e-metrics-"))
    os.chmod(d, 0o755)
    for name, body, mode in [
        ("crash.sh", CRASH_SH, 0o755),
        ("hupsave.sh", HUPSAVE_SH, 0o755),
        ("slowsave.sh", SLOWSAVE_SH, 0o755),
        ("noexec.sh", NOEXEC_SH, 0o644),
    ]:
        p = d / name
        p.write_text(body)
        os.chmod(p, mode)
    return d


def remove_game_scripts(d: pathlib.Path) -> None:
    shutil.rmtree(d, ignore_errors=True)


def extra_games(d: pathlib.Path) -> list[dict]:
    return [
        {"id": "crash", "name": "Crash", "command": str(d / "crash.sh")},
        {"id": "hupsave", "name": "Hangup save", "command": str(d / "hupsave.sh")},
        {"id": "slowsave", "name": "Slow save", "command": str(d / "slowsave.sh")},
        {"id": "noexec", "name": "Not executable", "command": str(d / "noexec.sh")},
    ]


# ----------------------------------------------------------------------------------------------
# a server that stops by itself


def reap_exited_server(srv: "conftest.Server", timeout: float = STOP_TIMEOUT) -> tuple[int, list[str]]:
    """For a server the test sent SIGTERM itself: wait for it to exit, then do the bookkeeping
    `Server.stop` does. Returns (exit status, processes it left behind)."""
    assert srv.proc is not None
    proc = srv.proc
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT)
        rc = None
    if srv._reader is not None:
        srv._reader.join(timeout=IO_TIMEOUT)
    conftest._OWNED_PIDS.discard(proc.pid)
    conftest._LIVE_SERVERS.discard(proc)
    problems = conftest.reap_leftovers()
    srv.proc = None
    if rc is None:
        problems.insert(0, f"server did not exit within {timeout}s of SIGTERM; killed")
    return (rc if rc is not None else -signal.SIGKILL), problems


# ----------------------------------------------------------------------------------------------
# stopping one thread with ptrace

PTRACE_DETACH = 17
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
WALL = 0x40000000  # __WALL: wait for any child, including threads we trace
SYS_IO_URING_ENTER = 426


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.restype = ctypes.c_long
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    return libc


def thread_names(pid: int) -> dict[int, str]:
    out = {}
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            out[int(t)] = pathlib.Path(f"/proc/{pid}/task/{t}/comm").read_text().strip()
        except OSError:
            pass
    return out


def core_executor_tid(pid: int, core: int) -> int:
    """The executor thread of data core `core`: of the threads named dg-core-N (glommio's
    blocking-pool threads share the name), the one waiting in io_uring_enter, else the
    first created."""
    prefix = f"dg-core-{core}"
    tids = sorted(
        t for t, n in thread_names(pid).items() if n == prefix or n.startswith(prefix + "-")
    )
    assert tids, f"no thread named {prefix}*: {thread_names(pid)}"

    def in_uring():
        for t in tids:
            try:
                nr = pathlib.Path(f"/proc/{pid}/task/{t}/syscall").read_text().split()[0]
            except (OSError, IndexError):
                continue
            if nr == str(SYS_IO_URING_ENTER):
                return t
        return None

    return wait_until(in_uring, 5.0) or tids[0]


class StoppedThread:
    """Stops one thread (only that one) with PTRACE_SEIZE + PTRACE_INTERRUPT; resumes it on
    exit with PTRACE_DETACH. All ptrace calls come from the calling thread (the tracer)."""

    def __init__(self, tid: int):
        self.tid = tid
        self.libc = _libc()
        self.seized = False

    def __enter__(self) -> "StoppedThread":
        if self.libc.ptrace(PTRACE_SEIZE, self.tid, None, None) != 0:
            err = ctypes.get_errno()
            raise PermissionError(err, f"PTRACE_SEIZE {self.tid}: {os.strerror(err)}")
        self.seized = True
        if self.libc.ptrace(PTRACE_INTERRUPT, self.tid, None, None) != 0:
            err = ctypes.get_errno()
            self.__exit__()
            raise OSError(err, f"PTRACE_INTERRUPT {self.tid}: {os.strerror(err)}")
        pid, status = os.waitpid(self.tid, WALL)
        assert pid == self.tid and os.WIFSTOPPED(status), f"waitpid: {pid} {status:#x}"
        return self

    def __exit__(self, *exc) -> None:
        if self.seized:
            self.seized = False
            if self.libc.ptrace(PTRACE_DETACH, self.tid, None, None) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"PTRACE_DETACH {self.tid}: {os.strerror(err)}")


# ----------------------------------------------------------------------------------------------
# tmpfs


def mount_tmpfs(d: pathlib.Path, size: str = "8m") -> Optional[str]:
    """Mount a tmpfs on `d`; returns why it could not be mounted (None: mounted)."""
    d.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(d)],
        capture_output=True,
        text=True,
        timeout=IO_TIMEOUT,
    )
    if r.returncode != 0:
        return f"mount -t tmpfs failed: {r.stderr.strip() or r.returncode}"
    return None


def umount(d: pathlib.Path) -> None:
    subprocess.run(["umount", str(d)], capture_output=True, timeout=IO_TIMEOUT)


def fill_until_enospc(path: pathlib.Path) -> int:
    """Write zeros to `path` until the file system says ENOSPC; returns bytes written."""
    n = 0
    chunk = b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                n += f.write(chunk)
            except OSError as e:
                if e.errno == 28:  # ENOSPC
                    break
                raise
        # A partial last block can leave a few bytes: fill them too.
        while True:
            try:
                if f.write(b"\0" * 512) == 0:
                    break
                n += 512
            except OSError as e:
                if e.errno == 28:
                    break
                raise
    return n
