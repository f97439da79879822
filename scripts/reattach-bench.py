#!/usr/bin/env python3
"""Re-attach time: log in -> the game's screen back, for a detached NetHack (`exec nethack`
over paramiko, a pyte screen), N times. Usage: scripts/reattach-bench.py BINARY [N]
(a release build; root, with nethack-console installed). Bounded: stops by itself."""
import json, os, pathlib, socket, statistics, subprocess, sys, tempfile, time
import paramiko, pyte
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests" / "e2e"))
from test_faults import nethack_game

BIN = sys.argv[1]
N = int(sys.argv[2]) if len(sys.argv) > 2 else 10
root = pathlib.Path(tempfile.mkdtemp(prefix="rtime-")); os.chmod(root, 0o711)
def port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
sp, hp = port(), port()
g = {**nethack_game(), "detach_grace_seconds": 600}
cfg = {"data_dir": str(root / "data"), "cores": 2,
       "ssh": {"listen": f"127.0.0.1:{sp}"}, "http": {"listen": f"127.0.0.1:{hp}"},
       "password": {"memory_kib": 64, "iterations": 1, "parallelism": 1, "max_concurrent": 2},
       "limits": {"exempt": ["127.0.0.0/8"]}, "games": [g], "log": {"level": "warn"}}
cp = root / "cfg.json"; cp.write_text(json.dumps(cfg))
env = {k: v for k, v in os.environ.items() if not k.startswith("DUNGEONGATE_")}
name = "rt" + os.urandom(3).hex()
subprocess.run([BIN, "user", "add", name, "--config", str(cp)], input="pw-123456\n", text=True, check=True, env=env, capture_output=True)
srv = subprocess.Popen([BIN, "serve", "--config", str(cp)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(1.0)

def session():
    t = paramiko.Transport(("127.0.0.1", sp)); t.connect(); t.auth_password(name, "pw-123456")
    ch = t.open_session(); ch.get_pty(term="xterm", width=80, height=24); ch.exec_command("nethack")
    scr = pyte.Screen(80, 24); st = pyte.ByteStream(scr)
    return t, ch, scr, st

def pump(ch, st):
    while ch.recv_ready():
        st.feed(ch.recv(65536))

def text(scr): return "\n".join(scr.display)

t, ch, scr, st = session()
deadline = time.time() + 60
while "Dlvl:" not in text(scr):
    assert time.time() < deadline, text(scr)
    pump(ch, st); s = text(scr)
    if "[ynaq]" in s or "Shall I pick" in s or "Is this ok?" in s: ch.send(b"y"); time.sleep(0.2)
    elif "--More--" in s: ch.send(b"\r"); time.sleep(0.2)
    time.sleep(0.02)
times = []
for i in range(N):
    t.sock.close()  # dropped
    time.sleep(0.5)
    start = time.perf_counter()
    t, ch, scr, st = session()
    while "Dlvl:" not in text(scr):
        pump(ch, st); time.sleep(0.001)
        assert time.perf_counter() - start < 30
    times.append((time.perf_counter() - start) * 1000)
times.sort()
print(f"log in -> game screen back (paramiko, exec nethack, {N} runs): p50 {statistics.median(times):.1f} ms, min {times[0]:.1f}, max {times[-1]:.1f} ms")
ch.send(b"S"); time.sleep(0.5); ch.send(b"y"); time.sleep(2)
srv.terminate(); srv.wait(30)
import glob
for f in glob.glob(f"/var/games/nethack/save/*{name}*"): os.unlink(f)
import shutil
shutil.rmtree(root, ignore_errors=True)
