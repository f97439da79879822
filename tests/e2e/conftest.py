"""End-to-end fixtures: build the server once, run it on loopback with a test config in a temp
data dir, create accounts through the real CLI, drive it with real SSH clients.

Nothing here sleeps for a fixed time or asserts a duration: every wait is "until X or a
generous deadline", and a deadline that passes is a test failure with the evidence attached.

Process hygiene: the pytest process makes itself a child subreaper, so any game process the
server leaves behind when it exits is re-parented to us and can be detected (and killed).
While a server runs, every test that used it must leave it with no child processes at all
(no running game, no unreaped zombie).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Optional

import pyte
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]

# Generous deadlines (seconds). They bound a hang; nothing asserts how fast anything was.
BUILD_TIMEOUT = 3600
START_TIMEOUT = 90
STOP_TIMEOUT = 30
IO_TIMEOUT = 30
IDLE_TIMEOUT = 30
CLI_TIMEOUT = 60

# The byte count the `rawcat` test game copies before it exits (see rawcat.sh).
RAWCAT_BYTES = 4 * 1024 * 1024

# Accounts every standard server has.
ALICE = "alice"
ALICE_PW = "alice-pass-1"
BOB = "bob"
BOB_PW = "bob-pass-22"

# Algorithm names the server implements (CONTRACT.md).
SERVER_KEX = [
    "mlkem768x25519-sha256",
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
]
PQ_KEX = [
    "mlkem768x25519-sha256",
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
]
SERVER_CIPHERS = [
    "chacha20-poly1305@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
]

PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


_become_subreaper()

# Pids of processes we started and still own (servers, ssh clients): not "leftovers".
_OWNED_PIDS: set[int] = set()
# Servers still running, killed at exit if a crash or interrupt skipped their teardown.
_LIVE_SERVERS: set[subprocess.Popen] = set()


@atexit.register
def _kill_live_servers() -> None:
    for p in list(_LIVE_SERVERS):
        if p.poll() is None:
            p.kill()
            p.wait()


# ----------------------------------------------------------------------------------------------
# /proc helpers


@dataclass
class ProcInfo:
    pid: int
    ppid: int
    state: str
    comm: str

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.comm}) state {self.state}"


def all_processes() -> list[ProcInfo]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = pathlib.Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        lpar, rpar = raw.find("("), raw.rfind(")")
        rest = raw[rpar + 2 :].split()
        out.append(ProcInfo(int(entry), int(rest[1]), rest[0], raw[lpar + 1 : rpar]))
    return out


def children_of(pid: int) -> list[ProcInfo]:
    return [p for p in all_processes() if p.ppid == pid]


def wait_until(pred: Callable[[], object], timeout: float, interval: float = 0.05):
    """Poll `pred` until it returns something truthy (returned) or `timeout` passes (None)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------------------------
# build


def _build_binary() -> pathlib.Path:
    env_bin = os.environ.get("DUNGEONGATE_BIN")
    if env_bin:
        p = pathlib.Path(env_bin)
        if not (p.is_file() and os.access(p, os.X_OK)):
            pytest.fail(f"DUNGEONGATE_BIN={env_bin} is not an executable file")
        return p
    r = subprocess.run(
        ["cargo", "build", "--bin", "dungeongate", "--message-format=json-render-diagnostics"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=BUILD_TIMEOUT,
    )
    if r.returncode != 0:
        pytest.fail(f"cargo build failed (exit {r.returncode}):\n{r.stderr[-6000:]}")
    exe = None
    for line in r.stdout.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") == "compiler-artifact" and msg.get("executable"):
            if msg.get("target", {}).get("name") == "dungeongate":
                exe = msg["executable"]
    if exe is None:
        pytest.fail("cargo build did not report the dungeongate executable")
    return pathlib.Path(exe)


@pytest.fixture(scope="session")
def dg_bin() -> pathlib.Path:
    return _build_binary()


# ----------------------------------------------------------------------------------------------
# keys and scripts


@dataclass
class KeyPair:
    kind: str
    private: pathlib.Path

    @property
    def public(self) -> pathlib.Path:
        return self.private.with_name(self.private.name + ".pub")

    @property
    def public_line(self) -> str:
        return self.public.read_text().strip()


@pytest.fixture(scope="session")
def keys(tmp_path_factory) -> dict[str, KeyPair]:
    """ed25519, ecdsa (P-256) and rsa (3072) keys registered for alice; `stranger` is not."""
    d = tmp_path_factory.mktemp("keys")
    specs = {
        "ed25519": ["-t", "ed25519"],
        "ecdsa": ["-t", "ecdsa", "-b", "256"],
        "rsa": ["-t", "rsa", "-b", "3072"],
        "stranger": ["-t", "ed25519"],
    }
    out = {}
    for name, args in specs.items():
        path = d / f"id_{name}"
        subprocess.run(
            ["ssh-keygen", "-q", *args, "-N", "", "-C", f"e2e-{name}", "-f", str(path)],
            check=True,
            timeout=CLI_TIMEOUT,
        )
        out[name] = KeyPair(name, path)
    return out


SIZELOOP_SH = """#!/bin/sh
# Test-only game: prints the PTY size at start and after every line it reads.
echo "SIZE $(/bin/stty size)"
while IFS= read -r line; do
    [ "$line" = quit ] && exit 0
    echo "SIZE $(/bin/stty size)"
done
"""

RAWCAT_SH = """#!/bin/sh
# Test-only game: raw mode, no echo, then copies exactly $1 bytes of input to output.
/bin/stty raw -echo
printf 'READY\\n'
exec /usr/bin/head -c "$1"
"""

ASKPASS_SH = """#!/bin/sh
# Answers OpenSSH's password prompt; counts the prompts when DG_E2E_ASKPASS_LOG is set.
[ -n "$DG_E2E_ASKPASS_LOG" ] && echo asked >> "$DG_E2E_ASKPASS_LOG"
printf '%s\\n' "$DG_E2E_PASSWORD"
"""


@pytest.fixture(scope="session")
def scripts_dir():
    """World-readable dir (games run as the `games` user when the server runs as root)."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="dg-e2e-scripts-"))
    os.chmod(d, 0o755)
    for name, body in {
        "sizeloop.sh": SIZELOOP_SH,
        "rawcat.sh": RAWCAT_SH,
        "askpass.sh": ASKPASS_SH,
    }.items():
        p = d / name
        p.write_text(body)
        os.chmod(p, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


# ----------------------------------------------------------------------------------------------
# the server


def default_games(scripts: pathlib.Path) -> list[dict]:
    return [
        {"id": "cat", "name": "Cat", "command": "/bin/cat"},
        {"id": "sizeloop", "name": "Size loop", "command": str(scripts / "sizeloop.sh")},
        {
            "id": "rawcat",
            "name": "Raw cat",
            "command": str(scripts / "rawcat.sh"),
            "args": [str(RAWCAT_BYTES)],
        },
    ]


def server_env() -> dict:
    """Our environment without DUNGEONGATE_* variables: the server reads every one of those as
    a config override and refuses unknown ones (DUNGEONGATE_BIN is the harness's own)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("DUNGEONGATE_")}


class Server:
    """One dungeongate process with its own data dir, config and ports."""

    def __init__(
        self,
        binary: pathlib.Path,
        root: pathlib.Path,
        scripts: pathlib.Path,
        ssh_overrides: Optional[dict] = None,
        config_overrides: Optional[dict] = None,
        listen_hosts: Iterable[str] = ("127.0.0.1",),
    ):
        self.binary = binary
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.data_dir = root / "data"
        self.config_path = root / "config.yaml"
        self.log_path = root / "server.log"
        self.scripts = scripts
        self.ssh_overrides = dict(ssh_overrides or {})
        self.config_overrides = dict(config_overrides or {})
        # Hosts SSH and HTTP listen on (IPv6 ones in brackets), all on the same two ports.
        self.listen_hosts = list(listen_hosts)
        self.port = 0
        self.http_port = 0
        self.proc: Optional[subprocess.Popen] = None
        self.stdout_lines: list[str] = []
        self._listening = threading.Event()
        self._reader: Optional[threading.Thread] = None
        self.write_config()

    # -- config and CLI

    def config_dict(self) -> dict:
        ssh = {
            "listen": self._listen(self.port),
            "max_auth_tries": 3,
            "login_grace_seconds": 120,
        }
        ssh.update(self.ssh_overrides)
        cfg = {
            "server_id": "dg-e2e",
            "data_dir": str(self.data_dir),
            "cores": 2,
            "ssh": ssh,
            "http": {"listen": self._listen(self.http_port)},
            "password": {
                "memory_kib": 64,
                "iterations": 1,
                "parallelism": 1,
                "max_concurrent": 2,
            },
            "banner": "## $SERVERID e2e\n",
            # Every test connects from 127.0.0.1 and many try wrong passwords on purpose: the
            # guessing limits get their own tests (test_hardening.py) and stay out of the way
            # here.
            # Per-source limits and penalties likewise: every test is 127.0.0.1 or ::1.
            "limits": {
                "account_failures_before_backoff": 100000,
                "source_failures_before_backoff": 100000,
                "registrations_per_source_per_hour": 100000,
                "exempt": ["127.0.0.0/8", "::1"],
            },
            "games": default_games(self.scripts),
            # As root (as CI runs), games run as `games`; as anyone else, as that user, which
            # is fine for throw-away test servers.
            "games_as_server_user": os.geteuid() != 0,
            "log": {"format": "text", "level": "info"},
        }
        overrides = dict(self.config_overrides)
        # A test's `limits` add to (or change) the ones above instead of replacing them all.
        cfg["limits"].update(overrides.pop("limits", {}))
        cfg.update(overrides)
        # A dropped connection hangs its game up at once, as most tests expect; the re-attach
        # tests (test_reattach.py) give their games a grace.
        cfg["games"] = [{"detach_grace_seconds": 0, **g} for g in cfg["games"]]
        return cfg

    def _listen(self, port: int):
        addrs = [f"{h}:{port}" for h in self.listen_hosts]
        return addrs[0] if len(addrs) == 1 else addrs

    def write_config(self) -> None:
        # JSON is YAML: no quoting surprises.
        self.config_path.write_text(json.dumps(self.config_dict(), indent=2) + "\n")

    def cli(self, *args: str, stdin: str = "", check: bool = True) -> subprocess.CompletedProcess:
        r = subprocess.run(
            [str(self.binary), *args, "--config", str(self.config_path)],
            env=server_env(),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
        )
        if check and r.returncode != 0:
            raise AssertionError(
                f"`dungeongate {' '.join(args)}` exited {r.returncode}\n"
                f"stdout: {r.stdout}\nstderr: {r.stderr}"
            )
        return r

    def add_user(self, name: str, password: str, keys: Iterable[KeyPair] = ()) -> None:
        self.cli("user", "add", name, stdin=password + "\n")
        for k in keys:
            self.cli("user", "key", "add", name, str(k.public))

    # -- lifecycle

    def start(self) -> "Server":
        assert self.proc is None, "already running"
        self.port = free_port()
        self.http_port = free_port()
        while self.http_port == self.port:
            self.http_port = free_port()
        self.write_config()
        self._listening.clear()
        self.stdout_lines = []
        log = open(self.log_path, "ab")
        self._log_offset = log.tell()
        self.proc = subprocess.Popen(
            [str(self.binary), "serve", "--config", str(self.config_path)],
            env=server_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
        )
        log.close()
        _OWNED_PIDS.add(self.proc.pid)
        _LIVE_SERVERS.add(self.proc)
        self._reader = threading.Thread(target=self._read_stdout, args=(self.proc,), daemon=True)
        self._reader.start()
        ok = wait_until(
            lambda: self._listening.is_set() or self.proc.poll() is not None, START_TIMEOUT
        )
        if not self._listening.is_set():
            status = self.proc.poll()
            self._kill_hard()
            raise AssertionError(
                f"server did not print 'ssh listening on …:{self.port}' "
                f"(exit status {status}, waited={bool(ok)})\nstdout: {self.stdout_lines}\n"
                f"log:\n{self.log_tail()}"
            )
        return self

    def _read_stdout(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.stdout_lines.append(line)
            if re.search(rf"ssh listening on \S+:{self.port}\b", line):
                self._listening.set()

    def log_tail(self, n: int = 25) -> str:
        """Panics, warnings and errors from the server log, then its last `n` lines."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(getattr(self, "_log_offset", 0))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return "(no log)"
        lines = [re.sub(r"\x1b\[[0-9;]*m", "", ln) for ln in text.splitlines()]
        notable = []
        for i, ln in enumerate(lines):
            if "panicked at" in ln:
                notable += lines[i : i + 4]
            elif re.search(r"\b(WARN|ERROR)\b", ln):
                notable.append(ln)
        tail = [ln for ln in lines if not ln.lstrip().startswith(("at ", "note:"))
                and not re.match(r"\s*\d+: ", ln)][-n:]
        out = ""
        if notable:
            out += "notable server log lines:\n" + "\n".join(notable[-40:]) + "\n"
        return out + "server log tail:\n" + "\n".join(tail)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def children(self) -> list[ProcInfo]:
        return children_of(self.pid) if self.proc is not None else []

    def assert_idle(self, what: str = "after the test") -> None:
        """The server has no child processes left: every game ended and was reaped."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            status = self.proc.returncode
            tail = self.log_tail()
            self.stop()
            self.start()
            raise AssertionError(f"server died {what} (exit {status})\n{tail}")
        if wait_until(lambda: not self.children(), IDLE_TIMEOUT) is None:
            kids = self.children()
            if kids:
                msg = f"server still has child processes {what}: " + ", ".join(
                    str(k) for k in kids
                )
                log = self.log_tail()
                # Restart so the next test does not inherit (and re-report) this leak.
                problems = self.stop()
                self.start()
                raise AssertionError(
                    msg + (f"; on restart: {'; '.join(problems)}" if problems else "")
                    + f"\n{log}"
                )

    def restart_if_dirty(self) -> None:
        """After a failed test: restart (without waiting) if a game is left or it died."""
        if self.proc is None:
            return
        if self.proc.poll() is not None or self.children():
            self.stop(grace=0)
            self.start()

    def describe_games(self) -> str:
        """The server's child processes with their I/O counters (which side of a stalled
        stream holds the bytes: wchar of `head` = bytes it got from the PTY and echoed)."""
        out = []
        for k in self.children():
            try:
                io = dict(
                    ln.split(": ") for ln in pathlib.Path(f"/proc/{k.pid}/io").read_text().splitlines()
                )
                out.append(f"{k} rchar={io.get('rchar')} wchar={io.get('wchar')}")
            except OSError:
                out.append(str(k))
        return "; ".join(out) or "(no child process)"

    def stop(self, grace: float = IDLE_TIMEOUT) -> list[str]:
        """SIGTERM; SIGKILL if it does not exit. Returns the problems seen (empty: clean).
        `grace`: how long processes it left behind may take to exit before being reported."""
        problems: list[str] = []
        if self.proc is None:
            return problems
        proc = self.proc
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                problems.append(f"server ignored SIGTERM for {STOP_TIMEOUT}s; sent SIGKILL")
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT)
        else:
            problems.append(f"server had already exited with status {proc.returncode}")
        if self._reader is not None:
            self._reader.join(timeout=IO_TIMEOUT)
        _OWNED_PIDS.discard(proc.pid)
        _LIVE_SERVERS.discard(proc)
        problems += reap_leftovers(grace)
        self.proc = None
        return problems

    def _kill_hard(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)
            _OWNED_PIDS.discard(self.proc.pid)
            _LIVE_SERVERS.discard(self.proc)
            reap_leftovers()
            self.proc = None


def reap_leftovers(grace: float = IDLE_TIMEOUT) -> list[str]:
    """Processes re-parented to us (the subreaper) that we did not start: a server that exited
    left them behind. Zombies among them already exited (we reap them silently); the ones
    still running after a grace period are reported and killed."""
    me = os.getpid()

    def strays() -> list[ProcInfo]:
        return [p for p in children_of(me) if p.pid not in _OWNED_PIDS]

    def reap_zombies() -> list[ProcInfo]:
        alive = []
        for p in strays():
            if p.state == "Z":
                try:
                    os.waitpid(p.pid, os.WNOHANG)
                except ChildProcessError:
                    pass
            else:
                alive.append(p)
        return alive

    if wait_until(lambda: not reap_zombies(), grace) is not None:
        return []
    alive = reap_zombies()
    problems = [f"left behind after the server exited: {p}" for p in alive]
    for p in alive:
        try:
            os.kill(p.pid, signal.SIGKILL)
            os.waitpid(p.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    return problems


class ServerFactory:
    def __init__(self, binary, root, scripts):
        self.binary = binary
        self.root = root
        self.scripts = scripts
        self.servers: list[Server] = []

    def __call__(self, name: str = "srv", **kw) -> Server:
        s = Server(self.binary, self.root / f"{name}-{len(self.servers)}", self.scripts, **kw)
        self.servers.append(s)
        return s

    def shutdown(self, grace: float = IDLE_TIMEOUT) -> list[str]:
        problems = []
        for s in self.servers:
            problems += s.stop(grace)
        return problems


def _standard_server(factory: ServerFactory, keys: dict[str, KeyPair], **kw) -> Server:
    s = factory("std", **kw)
    s.add_user(ALICE, ALICE_PW, [keys["ed25519"], keys["ecdsa"], keys["rsa"]])
    s.add_user(BOB, BOB_PW)
    return s.start()


@pytest.fixture(scope="module")
def module_factory(dg_bin, scripts_dir, tmp_path_factory):
    f = ServerFactory(dg_bin, tmp_path_factory.mktemp("servers"), scripts_dir)
    yield f
    problems = f.shutdown()
    assert not problems, "server teardown: " + "; ".join(problems)


@pytest.fixture
def server_factory(request, dg_bin, scripts_dir, tmp_path):
    """Servers for one test (own config); stopped and checked at the end of the test."""
    yield from _per_test_factory(request, ServerFactory(dg_bin, tmp_path, scripts_dir))


@pytest.fixture
def games_user_factory(request, dg_bin, scripts_dir):
    """Like server_factory, with the servers' data dirs under a directory the games user can
    pass through (pytest's own temp dirs are root's, mode 0700): for games with per-user
    directories, which run as that user."""
    root = pathlib.Path(tempfile.mkdtemp(prefix="dg-e2e-games-"))
    os.chmod(root, 0o711)
    try:
        yield from _per_test_factory(request, ServerFactory(dg_bin, root, scripts_dir))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _per_test_factory(request, f: ServerFactory):
    yield f
    if _call_failed(request):
        for s in f.servers:
            if s.proc is not None:
                print(f"server {s.root.name}: children {[str(c) for c in s.children()]}")
                print(s.log_tail())  # shown with the failure report
        f.shutdown(grace=0)  # the test already failed: just clean up, quickly
        return
    try:
        for s in f.servers:
            if s.proc is not None:
                s.assert_idle()
    finally:
        problems = f.shutdown()
    assert not problems, "server teardown: " + "; ".join(problems)


@pytest.fixture(scope="module")
def server(module_factory, keys) -> Server:
    """A standard server shared by a module: alice (password + 3 keys), bob (password)."""
    return _standard_server(module_factory, keys)


@pytest.fixture(autouse=True)
def _server_idle_after_each_test(request):
    yield
    if "server" in request.fixturenames:
        srv = request.getfixturevalue("server")
        if _call_failed(request):
            print(f"server pid {srv.pid}, children {[str(c) for c in srv.children()]}")
            print(srv.log_tail())  # shown with the failure report
            srv.restart_if_dirty()  # the failure is reported already; don't pile on
        else:
            srv.assert_idle(f"after {request.node.name}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.dg_call_failed = report.failed


def _call_failed(request) -> bool:
    return bool(getattr(request.node, "dg_call_failed", False))


# ----------------------------------------------------------------------------------------------
# OpenSSH client driven through pipes


class SshProc:
    """An `ssh` client with stdin/stdout/stderr pipes; reader threads drain both outputs so
    writes never stall on a full pipe."""

    def __init__(self, argv: list[str], env: Optional[dict] = None):
        self.argv = argv
        self.p = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            bufsize=0,
        )
        _OWNED_PIDS.add(self.p.pid)
        self.out = bytearray()
        self.err = bytearray()
        self.cv = threading.Condition()
        self.threads = [
            threading.Thread(target=self._pump, args=(self.p.stdout, self.out), daemon=True),
            threading.Thread(target=self._pump, args=(self.p.stderr, self.err), daemon=True),
        ]
        for t in self.threads:
            t.start()

    def _pump(self, f, buf: bytearray) -> None:
        fd = f.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            with self.cv:
                if chunk:
                    buf += chunk
                self.cv.notify_all()
            if not chunk:
                return

    def send(self, data: bytes) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def close_stdin(self) -> None:
        if self.p.stdin is not None and not self.p.stdin.closed:
            try:
                self.p.stdin.close()
            except BrokenPipeError:
                pass

    def expect(self, needle: bytes, start: int = 0, timeout: float = IO_TIMEOUT) -> int:
        """Wait until `needle` is in stdout at or after `start`; returns the index after it."""
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                i = self.out.find(needle, start)
                if i >= 0:
                    return i + len(needle)
                left = deadline - time.monotonic()
                if left <= 0 or (self.p.poll() is not None and not any(t.is_alive() for t in self.threads)):
                    raise AssertionError(
                        f"{needle!r} not seen (exit {self.p.poll()})\n{self.describe()}"
                    )
                self.cv.wait(min(left, 0.5))

    def wait_out_len(self, n: int, stall_timeout: float = IO_TIMEOUT) -> None:
        """Wait until stdout holds `n` bytes; fail if no byte arrives for `stall_timeout`."""
        seen = len(self.out)
        deadline = time.monotonic() + stall_timeout
        with self.cv:
            while len(self.out) < n:
                if len(self.out) != seen:
                    seen = len(self.out)
                    deadline = time.monotonic() + stall_timeout
                left = deadline - time.monotonic()
                if left <= 0 or not self.threads[0].is_alive():
                    raise AssertionError(
                        f"stdout stalled at {len(self.out)} of {n} bytes "
                        f"(exit {self.p.poll()})\n"
                        f"stderr tail: {bytes(self.err[-2000:]).decode('utf-8', 'replace')}"
                    )
                self.cv.wait(min(left, 0.5))

    def wait(self, timeout: float = IO_TIMEOUT) -> int:
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"ssh did not exit within {timeout}s\n{self.describe()}")
        for t in self.threads:
            t.join(timeout=IO_TIMEOUT)
        _OWNED_PIDS.discard(self.p.pid)
        return rc

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait(timeout=STOP_TIMEOUT)
        _OWNED_PIDS.discard(self.p.pid)
        self.close_stdin()

    def describe(self) -> str:
        return (
            f"argv: {' '.join(self.argv)}\n"
            f"stdout tail: {bytes(self.out[-1500:])!r}\n"
            f"stderr tail: {bytes(self.err[-3000:]).decode('utf-8', 'replace')}"
        )

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close_stdin()
        if self.p.poll() is None:
            self.kill()
        else:
            _OWNED_PIDS.discard(self.p.pid)


def ssh_argv(
    port: int, user: str, *opts: str, key: Optional[KeyPair] = None, command=None, host="127.0.0.1"
) -> list[str]:
    argv = [
        "ssh",
        "-tt",
        "-e",
        "none",
        "-p",
        str(port),
        "-F",
        "/dev/null",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "IdentityAgent=none",
        "-o",
        "ConnectTimeout=30",
    ]
    if key is not None:
        argv += [
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "PreferredAuthentications=publickey",
            "-i",
            str(key.private),
        ]
    argv += list(opts)
    argv.append(f"{user}@{host}")
    if command is not None:
        argv.append(command)
    return argv


def askpass_env(scripts: pathlib.Path, password: str) -> dict:
    env = dict(os.environ)
    env.update(
        {
            "SSH_ASKPASS": str(scripts / "askpass.sh"),
            "SSH_ASKPASS_REQUIRE": "force",
            "DISPLAY": env.get("DISPLAY", ":0"),
            "DG_E2E_PASSWORD": password,
        }
    )
    return env


def password_opts(prompts: int = 1) -> tuple[str, ...]:
    """`ssh` options for a password-only login that asks for the password `prompts` times at
    most (askpass answers each prompt)."""
    return (
        "-o",
        "BatchMode=no",
        "-o",
        "PreferredAuthentications=password",
        "-o",
        "PubkeyAuthentication=no",
        "-o",
        f"NumberOfPasswordPrompts={prompts}",
    )


PASSWORD_OPTS = password_opts()


# ----------------------------------------------------------------------------------------------
# a terminal screen


class Screen:
    """pyte screen fed from an SSH byte stream."""

    def __init__(self, cols: int = 80, rows: int = 24):
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = bytearray()

    def feed(self, data: bytes) -> None:
        self.raw += data
        self.stream.feed(data)

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display)

    def has(self, *needles: str) -> bool:
        t = self.text()
        return all(n in t for n in needles)


class ParamikoShell:
    """A paramiko channel with a screen; `wait_for` reads until the screen shows the text."""

    def __init__(self, chan, cols: int = 80, rows: int = 24):
        self.chan = chan
        self.screen = Screen(cols, rows)
        self.chan.settimeout(0.2)
        self.eof = False

    def pump(self) -> None:
        import socket as _s

        try:
            data = self.chan.recv(65536)
        except _s.timeout:
            return
        if not data:
            self.eof = True
            return
        self.screen.feed(data)

    def wait_for(self, *needles: str, timeout: float = IO_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not self.screen.has(*needles):
            if self.eof or time.monotonic() >= deadline:
                raise AssertionError(
                    f"screen never showed {needles!r} (eof={self.eof}):\n{self.screen.text()}"
                )
            self.pump()

    def wait_eof(self, timeout: float = IO_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not self.eof:
            if time.monotonic() >= deadline:
                raise AssertionError(f"channel did not close:\n{self.screen.text()}")
            self.pump()

    def send(self, data: bytes) -> None:
        self.chan.sendall(data)


def paramiko_transport(
    port: int,
    kex: Optional[str] = None,
    cipher: Optional[str] = None,
    host: str = "127.0.0.1",
    source: Optional[str] = None,
):
    """A paramiko client transport after its first key exchange. A Transport is a context
    manager: `with paramiko_transport(port) as t:` closes it on leaving the block. `source`
    picks the local address (another 127.x address looks like another client)."""
    import paramiko

    sock = socket.create_connection(
        (host, port), timeout=IO_TIMEOUT, source_address=(source, 0) if source else None
    )
    t = paramiko.Transport(sock)
    t.banner_timeout = IO_TIMEOUT
    t.auth_timeout = IO_TIMEOUT
    opts = t.get_security_options()
    if kex is not None:
        opts.kex = (kex,)
    if cipher is not None:
        opts.ciphers = (cipher,)
    t.start_client(timeout=IO_TIMEOUT)
    return t


def open_shell(t, cols: int = 80, rows: int = 24) -> ParamikoShell:
    """A PTY and a shell (the lobby) on a logged-in transport, with a screen."""
    chan = t.open_session(timeout=IO_TIMEOUT)
    chan.get_pty(term="xterm", width=cols, height=rows)
    chan.invoke_shell()
    return ParamikoShell(chan, cols, rows)


def exec_in_pty(t, command: str, cols: int = 80, rows: int = 24):
    """A PTY and an exec of `command` on a logged-in transport; returns the channel."""
    chan = t.open_session(timeout=IO_TIMEOUT)
    chan.get_pty(term="xterm", width=cols, height=rows)
    chan.exec_command(command)
    return chan


def channel_read_while(
    chan, buf: bytearray, more: Callable[[], bool], what: str, timeout: float = IO_TIMEOUT
) -> bool:
    """Read from a paramiko channel into `buf` while `more()` holds: True once it no longer
    does, False if the channel reaches EOF first. Fails with `what` when `timeout` passes."""
    deadline = time.monotonic() + timeout
    chan.settimeout(0.2)
    while more():
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}; got {bytes(buf[-1500:])!r}")
        try:
            data = chan.recv(65536)
        except socket.timeout:
            continue
        if not data:
            return False
        buf += data
    return True


def channel_read_until(chan, needle: bytes, buf: bytearray, timeout: float = IO_TIMEOUT) -> None:
    """Read from a paramiko channel into `buf` until `needle` is in it."""
    if not channel_read_while(chan, buf, lambda: needle not in buf, f"{needle!r} not received", timeout):
        raise AssertionError(f"channel closed before {needle!r}; got {bytes(buf[-1500:])!r}")


def channel_drain(chan, timeout: float = IO_TIMEOUT) -> bytes:
    """Read until the channel closes (EOF); returns everything read."""
    buf = bytearray()
    channel_read_while(chan, buf, lambda: True, "channel did not reach EOF", timeout)
    return bytes(buf)


def exit_status(chan) -> int:
    assert chan.status_event.wait(IO_TIMEOUT), "no exit-status arrived"
    return chan.recv_exit_status()


def echo_through(chan, token: bytes) -> None:
    """Send a line to `cat` in a PTY and read it back twice (tty echo + cat's copy)."""
    buf = bytearray()
    chan.sendall(token + b"\n")
    channel_read_until(chan, token, buf)
    del buf[: buf.index(token) + len(token)]
    channel_read_until(chan, token, buf)


def end_cat(chan) -> None:
    """Ctrl-D to `cat`, read to EOF, expect exit status 0."""
    chan.sendall(b"\x04")
    channel_drain(chan)
    assert exit_status(chan) == 0
    chan.close()


def cat_echo(t, token: bytes) -> None:
    """exec `cat` in a PTY, see the token twice (tty echo + cat), end it with Ctrl-D."""
    chan = exec_in_pty(t, "cat")
    echo_through(chan, token)
    end_cat(chan)


# ----------------------------------------------------------------------------------------------
# the lobby, driven through its screen


@contextlib.contextmanager
def guest_lobby(port: int, name: str) -> Iterator[ParamikoShell]:
    """A connection as the guest `name` (`none` auth) with the lobby shell open; closed on
    leaving the block."""
    with paramiko_transport(port) as t:
        t.auth_none(name)
        yield open_shell(t)


def _lobby_name_and_password(sh: ParamikoShell, key: bytes, name: str, password: str) -> None:
    sh.send(key)
    sh.wait_for("Name:")
    sh.send(name.encode() + b"\r")
    sh.wait_for("Password:")
    sh.send(password.encode() + b"\r")


def lobby_log_in(sh: ParamikoShell, name: str, password: str) -> None:
    """From the guest lobby: `l`, the name, the password. What follows (the account's lobby
    or a refusal) is the caller's to wait for."""
    _lobby_name_and_password(sh, b"l", name, password)


def lobby_register(sh: ParamikoShell, name: str, password: str) -> str:
    """From the guest lobby: `r`, the name, the password twice, no e-mail; waits until the
    lobby says the new account is logged in. Returns the screen as it stood at the e-mail
    prompt, for checks that the password typed before it was not echoed."""
    _lobby_name_and_password(sh, b"r", name, password)
    sh.wait_for("Password again:")
    sh.send(password.encode() + b"\r")
    sh.wait_for("E-mail")
    at_email_prompt = sh.screen.text()
    sh.send(b"\r")
    sh.wait_for("Logged in as", name)
    return at_email_prompt


def lobby_play_cat(sh: ParamikoShell, server: Server, token: str, *lobby: str) -> None:
    """From an account's lobby: `p` starts the first game (Cat); echo `token` through it, end
    it with Ctrl-D, and wait until the screen shows `lobby` again."""
    sh.send(b"p")
    assert wait_until(server.children, IO_TIMEOUT), "`p` started no game process"
    sh.send(token.encode() + b"\r")
    sh.wait_for(token)
    # A fresh screen: what appears from now on was drawn after the game ended.
    sh.screen.screen.reset()
    sh.send(b"\x04")
    sh.wait_for(*lobby)


# ----------------------------------------------------------------------------------------------
# any client in a real terminal


class TermProc:
    """A client program running in a pseudo-terminal of its own (its controlling terminal), as
    when a person types the command: for clients that insist on a terminal for `-t` (dbclient,
    plink). The output feeds a screen; the interface matches ParamikoShell, so the lobby
    helpers drive either."""

    def __init__(self, argv: list[str], env: Optional[dict] = None, cols: int = 80, rows: int = 24):
        import fcntl
        import pty
        import struct
        import termios

        self.argv = argv
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

        def make_controlling_terminal() -> None:
            # Runs after setsid (start_new_session) and after fds 0-2 became the slave.
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.p = subprocess.Popen(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
            preexec_fn=make_controlling_terminal,
        )
        os.close(slave)
        _OWNED_PIDS.add(self.p.pid)
        self.master = master
        self.screen = Screen(cols, rows)
        self.cv = threading.Condition()
        self.eof = False
        self.reader = threading.Thread(target=self._pump, daemon=True)
        self.reader.start()

    def _pump(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO once the client exits and the slave has no holder
                chunk = b""
            with self.cv:
                if chunk:
                    self.screen.feed(chunk)
                else:
                    self.eof = True
                self.cv.notify_all()
            if not chunk:
                return

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def pump(self) -> None:
        """A reader thread feeds the screen; pollers written for ParamikoShell wait here."""
        time.sleep(0.05)

    def wait_raw(self, needle: bytes, timeout: float = IO_TIMEOUT) -> None:
        """Wait until the bytes the client printed contain `needle`."""
        self._wait(lambda: needle in self.screen.raw, f"{needle!r} never printed", timeout)

    def wait_for(self, *needles: str, timeout: float = IO_TIMEOUT) -> None:
        """Wait until the screen shows every one of `needles`."""
        self._wait(lambda: self.screen.has(*needles), f"screen never showed {needles!r}", timeout)

    def wait_eof(self, timeout: float = IO_TIMEOUT) -> None:
        self._wait(lambda: self.eof, "the client did not finish", timeout)

    def _wait(self, done: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.cv:
            while not done():
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    raise AssertionError(f"{what} (exit {self.p.poll()})\n{self.describe()}")
                self.cv.wait(min(left, 0.5))

    def wait(self, timeout: float = IO_TIMEOUT) -> int:
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"client did not exit within {timeout}s\n{self.describe()}")
        self.reader.join(timeout=IO_TIMEOUT)
        _OWNED_PIDS.discard(self.p.pid)
        return rc

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait(timeout=STOP_TIMEOUT)
        _OWNED_PIDS.discard(self.p.pid)

    def describe(self) -> str:
        return (
            f"argv: {' '.join(self.argv)}\n"
            f"printed (tail): {bytes(self.screen.raw[-2000:])!r}\n"
            f"screen:\n{self.screen.text()}"
        )

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.p.poll() is None:
            self.kill()
        else:
            _OWNED_PIDS.discard(self.p.pid)
        self.reader.join(timeout=IO_TIMEOUT)
        os.close(self.master)


def server_says(port: int, source: str) -> bytes:
    """Connect from `source` (another 127.x address is another client to the server), send a
    version line and read what the server says: its own version line and, when it refuses
    the connection, a DISCONNECT whose text is readable in the clear, then the close. An
    admitted connection says no more after its KEXINIT: reading stops after 3 quiet seconds
    (a refusal is told at once, so this only bounds the admitted case)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    s.settimeout(3)
    s.sendall(b"SSH-2.0-e2e-test\r\n")
    out = bytearray()
    try:
        while len(out) < 65536:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except OSError:
        pass
    finally:
        s.close()
    return bytes(out)


def term_echo_through_cat(t: "TermProc", token: bytes) -> None:
    """`cat` in a cooked PTY seen through a client in a terminal: the line comes back twice
    (tty echo, then cat); Ctrl-D ends it with status 0."""
    t.send(token + b"\r")
    t.wait_raw(token + b"\r\n" + token)
    t.send(b"\x04")
    assert t.wait() == 0, t.describe()
