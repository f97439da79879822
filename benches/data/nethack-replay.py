#!/usr/bin/env python3
"""Records benches/data/nethack-replay.bin: the raw bytes nethack-console writes to an 80x24
xterm while it is driven through character creation, a few hundred moves and a quit.

Run from the repository root: python3 benches/data/nethack-replay.py
The game runs with a throw-away HOME and its options in NETHACKOPTIONS, so no .nethackrc or
earlier save gets in the way; DECgraphics is on so the fixture has ESC ( 0 / SO / SI drawing.
"""
import fcntl, os, pty, random, select, struct, sys, tempfile, termios, time

OUT = "benches/data/nethack-replay.bin"
LIMIT = 300_000
OPTIONS = "DECgraphics,color,hilite_pet,!autopickup,time,showexp,!legacy,!splash_screen,!mail"


def main():
    rng = random.Random(4242)
    home = tempfile.mkdtemp(prefix="nh-replay-")
    env = dict(os.environ, HOME=home, TERM="xterm-256color", NETHACKOPTIONS=OPTIONS,
               LINES="24", COLUMNS="80")
    name = "replay%d" % os.getpid()
    pid, fd = pty.fork()
    if pid == 0:
        os.execve("/usr/games/nethack", ["nethack", "-u", name], env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    out = bytearray()

    def drain(wait):
        end = time.time() + wait
        while True:
            left = end - time.time()
            r, _, _ = select.select([fd], [], [], max(left, 0))
            if not r:
                return
            try:
                data = os.read(fd, 65536)
            except OSError:
                return
            if not data:
                return
            out.extend(data)

    def send(keys, wait=0.05):
        os.write(fd, keys)
        drain(wait)

    drain(1.0)
    # Character creation by hand: the role, race, gender and alignment menus.
    for key in [b"n", b"v", b"h", b"f", b"l", b"y"]:
        send(key, 0.3)
    send(b"\x1b", 0.3)  # past the welcome --More--
    moves = b"hjklyubn"
    extras = [b"s", b"i", b":", b"5s", b"\x12", b"\x18", b"\\", b"^"]
    for _ in range(1500):
        if len(out) > LIMIT - 20_000 or os.waitpid(pid, os.WNOHANG)[0] == pid:
            break
        if rng.random() < 0.1:
            send(rng.choice(extras))
        else:
            send(bytes([rng.choice(moves)]))
        send(b"\x1b", 0.02)  # dismiss any --More-- or prompt
    else:
        for key in [b"#quit\r", b"y", b"q", b"q", b"q", b"q", b"q"]:
            send(key, 0.3)
        drain(1.0)
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    # Keep nothing after the game left the alternate screen (the PTY echoes stray keys).
    end = out.rfind(b"\x1b[?1049l")
    if end >= 0:
        del out[end + len(b"\x1b[?1049l"):]
    with open(OUT, "wb") as f:
        f.write(out[:LIMIT])
    print(len(out), "bytes captured,", min(len(out), LIMIT), "kept", file=sys.stderr)


if __name__ == "__main__":
    main()
