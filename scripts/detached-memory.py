#!/usr/bin/env python3
"""Server memory (PSS) with N attached games, then with the same N detached (every client's
socket dropped). Usage: scripts/detached-memory.py N BINARY (a release build). Bounded: N
accounts, N `cat` games, stops the server at the end."""
import json, os, subprocess, sys, time, socket, pathlib, tempfile
import paramiko

N = int(sys.argv[1]) if len(sys.argv) > 1 else 50
BIN = sys.argv[2] if len(sys.argv) > 2 else "/work/tgt-check/debug/dungeongate"
root = pathlib.Path(tempfile.mkdtemp(prefix="detmem-"))
os.chmod(root, 0o755)
def port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
sp, hp = port(), port()
cfg = {
    "data_dir": str(root / "data"), "cores": 2,
    "ssh": {"listen": f"127.0.0.1:{sp}"}, "http": {"listen": f"127.0.0.1:{hp}"},
    "password": {"memory_kib": 64, "iterations": 1, "parallelism": 1, "max_concurrent": 2},
    "limits": {"exempt": ["127.0.0.0/8"], "account_failures_before_backoff": 100000,
               "source_failures_before_backoff": 100000},
    "games": [{"id": "cat", "name": "Cat", "command": "/bin/cat", "detach_grace_seconds": 600}],
    "games_as_server_user": True,
    "recording": {"enabled": True},
    "log": {"level": "warn"},
}
cp = root / "cfg.json"; cp.write_text(json.dumps(cfg))
env = {k: v for k, v in os.environ.items() if not k.startswith("DUNGEONGATE_")}
for i in range(N):
    subprocess.run([BIN, "user", "add", f"u{i}", "--config", str(cp)], input="pw-123456\n",
                   text=True, capture_output=True, check=True, env=env)
srv = subprocess.Popen([BIN, "serve", "--config", str(cp)], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(1.5)
def pss():
    for line in open(f"/proc/{srv.pid}/smaps_rollup"):
        if line.startswith("Pss:"):
            return int(line.split()[1])
def metric(name):
    import urllib.request
    t = urllib.request.urlopen(f"http://127.0.0.1:{hp}/metrics").read().decode()
    return sum(float(l.split()[-1]) for l in t.splitlines() if l.startswith(name + " ") or l.startswith(name + "{"))
base = pss()
ts = []
for i in range(N):
    t = paramiko.Transport(("127.0.0.1", sp)); t.connect(); t.auth_password(f"u{i}", "pw-123456")
    ch = t.open_session(); ch.get_pty(width=80, height=24); ch.exec_command("cat")
    ch.send(b"some text for the screen model " * 3 + b"\r")
    ts.append((t, ch))
time.sleep(2)
attached = pss()
print(f"baseline PSS {base} KiB; {N} attached games: {attached} KiB (+{(attached-base)/N:.1f} KiB each)")
for t, ch in ts:
    t.sock.close()  # dropped, as a killed client leaves it
time.sleep(12)
det = metric("game_sessions_detached")
detached = pss()
print(f"{int(det)} detached games: {detached} KiB ({(detached-base)/N:.1f} KiB each above baseline)")
srv.terminate(); srv.wait(30)
import shutil
shutil.rmtree(root, ignore_errors=True)
