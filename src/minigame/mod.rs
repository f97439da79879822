//! "Amulet run": a tiny built-in roguelike so a fresh machine has something to play.
//! Runs on the process's own terminal (stdin/stdout, raw mode, ANSI escapes only) as
//! `dungeongate builtin-game amulet [--save FILE] [--name NAME]`. It never starts another
//! program. SIGHUP/SIGTERM save to the save file (if any) and exit 0, like NetHack's hangup save;
//! a save file found at start is resumed and consumed.

mod world;

use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};

use world::{parse_keys, Key, Outcome, Rng, World, H, W};

/// Runs the game; `args` are those after the game name. Returns the process exit code.
pub fn run(args: &[String]) -> io::Result<i32> {
    let (save, name) = match parse_args(args) {
        Ok(v) => v,
        Err(msg) => {
            eprintln!("amulet: {msg}\nusage: amulet [--save FILE] [--name NAME]");
            return Ok(2);
        }
    };
    let (mut world, mut message) = resume_or_new(save.as_deref());
    let signals = Signals::install()?;
    let stdin = io::stdin();
    let raw = RawMode::enter(stdin.as_fd())?;
    let mut out = io::stdout().lock();
    let mut mode = Mode::Playing;
    let mut buf = [0u8; 64];
    loop {
        let screen = render(&world, mode, &message, &name, term_size());
        if out
            .write_all(screen.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            break; // the terminal is gone: treat as a hangup
        }
        let stdin_ready = wait_readable(stdin.as_fd(), signals.wake.as_fd());
        signals.drain();
        if signals.hangup.load(Ordering::Relaxed) {
            break;
        }
        if !stdin_ready {
            continue; // SIGWINCH: redraw at the new size
        }
        let n = match nix::unistd::read(stdin.as_fd(), &mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
            Err(_) => break, // EIO: the terminal hung up
        };
        message.clear();
        let (cols, rows) = term_size();
        let too_small = cols < W || rows < 24;
        for key in parse_keys(buf.get(..n).unwrap_or_default()) {
            match (mode, key) {
                (Mode::Won, _) => return finish(raw, &mut out, "You escaped with the amulet!"),
                (_, Key::Char(b'S')) => match save_to(save.as_deref(), &world) {
                    Ok(()) => return finish(raw, &mut out, "Your game was saved."),
                    Err(e) => message = format!("Cannot save: {e}"),
                },
                (_, _) if too_small => {}
                (Mode::ConfirmQuit, Key::Char(b'y' | b'Y')) => {
                    return finish(raw, &mut out, "Bye.")
                }
                (Mode::ConfirmQuit | Mode::Help, _) => mode = Mode::Playing,
                (Mode::Playing, Key::Char(b'q')) => {
                    mode = Mode::ConfirmQuit;
                    message = "Really quit? This game will be lost. [yn]".into();
                }
                (Mode::Playing, Key::Char(b'?')) => mode = Mode::Help,
                (Mode::Playing, k) => {
                    if let Some((dx, dy)) = k.direction() {
                        message = describe(world.step(dx, dy), &world);
                        if world.amulet.is_none() && world.player == world.stairs {
                            mode = Mode::Won;
                        }
                    }
                }
            }
        }
    }
    // Hangup: save quietly (nobody is watching) and exit successfully.
    if mode != Mode::Won {
        let _ = save_to(save.as_deref(), &world);
    }
    drop(raw);
    Ok(0)
}

/// What the keyboard currently controls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Moving around.
    Playing,
    /// The help page is shown; any key returns.
    Help,
    /// Waiting for y/n after `q`.
    ConfirmQuit,
    /// The game is won; any key exits.
    Won,
}

const HELP: &[&str] = &[
    "Amulet run -- find the amulet (\") and escape by the stairs (>).",
    "",
    "  y k u     Move with the vi keys, the arrow keys or the numeric keypad",
    "   \\|/      (1-9, or Home/End/PgUp/PgDn). Walk onto $ to pick up gold.",
    "  h-@-l",
    "   /|\\      S  save the game and leave (you resume where you left off)",
    "  b j n     q  quit without saving",
    "            ?  this help",
    "",
    "Press any key to return to the game.",
];

/// Draws the whole 80x24 screen (or a notice if the terminal is smaller).
fn render(
    world: &World,
    mode: Mode,
    message: &str,
    name: &str,
    (cols, rows): (usize, usize),
) -> String {
    if cols < W || rows < 24 {
        let mut s = String::from("\x1b[H\x1b[2J");
        s += &format!("Amulet run needs at least 80x24; this terminal is {cols}x{rows}.\r\n");
        s += "Enlarge the window, or press S to save and leave.";
        return s;
    }
    // Repaint in place (no full clear, so no flicker); `ESC [K` wipes leftovers.
    let mut s = format!("\x1b[H{message}\x1b[K");
    for y in 0..H {
        s += &format!("\x1b[{};1H", y + 2);
        if mode == Mode::Help {
            s += HELP.get(y).copied().unwrap_or_default();
            s += "\x1b[K";
            continue;
        }
        for x in 0..W {
            s += match (x, y) {
                p if p == world.player => "\x1b[1m@\x1b[m",
                _ if !world.seen(x, y) => " ",
                p if world.amulet == Some(p) => "\x1b[1;35m\"\x1b[m",
                p if world.piles.iter().any(|(q, _)| *q == p) => "\x1b[33m$\x1b[m",
                p if p == world.stairs => "\x1b[1m>\x1b[m",
                _ if world.is_floor(x, y) => ".",
                _ => "#",
            };
        }
    }
    let amulet = if world.amulet.is_none() {
        "  [amulet]"
    } else {
        ""
    };
    s += &format!(
        "\x1b[23;1H{name}  Gold: {}  Moves: {}{amulet}\x1b[K\x1b[24;1H? help  S save and leave  q quit\x1b[K",
        world.gold, world.moves
    );
    s += &format!("\x1b[{};{}H", world.player.1 + 2, world.player.0 + 1);
    s
}

/// The message line for a move's outcome.
fn describe(outcome: Outcome, world: &World) -> String {
    match outcome {
        Outcome::Blocked | Outcome::Moved => String::new(),
        Outcome::Gold(n) => format!("You pick up {n} gold pieces."),
        Outcome::Amulet => "You pick up the Amulet! Now find the stairs (>).".into(),
        Outcome::NeedAmulet => {
            "These stairs lead out, but you have not found the amulet yet.".into()
        }
        Outcome::Won => format!(
            "You escape with the amulet and {} gold in {} moves! Press any key.",
            world.gold, world.moves
        ),
    }
}

/// `--save FILE` and `--name NAME` (name reduced to printable ASCII, at most 20 characters).
fn parse_args(args: &[String]) -> Result<(Option<PathBuf>, String), String> {
    let (mut save, mut name) = (None, "player".to_owned());
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let value = it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--save" => save = Some(PathBuf::from(value?)),
            "--name" => {
                name = value?
                    .chars()
                    .filter(|c| c.is_ascii_graphic())
                    .take(20)
                    .collect()
            }
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    Ok((save, name))
}

/// Loads and consumes the save file if there is one, else starts a new random game.
fn resume_or_new(save: Option<&Path>) -> (World, String) {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ (u64::from(std::process::id()) << 32);
    let new = || World::generate(&mut Rng::new(seed));
    let Some(text) = save.and_then(|p| std::fs::read_to_string(p).ok()) else {
        return (
            new(),
            "Find the amulet (\") and escape by the stairs (>). Press ? for help.".into(),
        );
    };
    match World::from_save(&text) {
        Ok(world) => {
            let _ = save.map(std::fs::remove_file);
            (world, "Welcome back! Your game was restored.".into())
        }
        Err(e) => (new(), format!("{e}; starting a new game.")),
    }
}

/// Writes the save atomically (temporary file, then rename).
fn save_to(path: Option<&Path>, world: &World) -> io::Result<()> {
    let path =
        path.ok_or_else(|| io::Error::other("this game has no save file (press q to quit)"))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, world.to_save())?;
    std::fs::rename(&tmp, path)
}

/// Restores the terminal and prints a parting line.
fn finish(raw: RawMode, out: &mut impl Write, line: &str) -> io::Result<i32> {
    drop(raw);
    writeln!(out, "{line}")?;
    Ok(0)
}

/// Terminal size as (cols, rows) from `TIOCGWINSZ` on stdout; (0, 0) if unknown.
fn term_size() -> (usize, usize) {
    // SAFETY: winsize is plain data and the ioctl only writes into it.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd number and out-pointer.
    if unsafe { libc::ioctl(io::stdout().as_raw_fd(), libc::TIOCGWINSZ, &mut ws) } != 0 {
        return (0, 0);
    }
    (usize::from(ws.ws_col), usize::from(ws.ws_row))
}

/// Blocks until stdin or the signal pipe is readable; true if stdin has input (or hung up).
fn wait_readable(stdin: BorrowedFd<'_>, wake: BorrowedFd<'_>) -> bool {
    let mut fds = [stdin, wake].map(|fd| libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    });
    // SAFETY: a valid array of two pollfds.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
    ready > 0 && fds[0].revents != 0
}

/// Raw keyboard mode plus the alternate screen; both undone on drop.
struct RawMode {
    /// Terminal settings to restore.
    saved: Termios,
}

impl RawMode {
    fn enter(fd: BorrowedFd<'_>) -> io::Result<RawMode> {
        let saved = tcgetattr(fd)?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(fd, SetArg::TCSAFLUSH, &raw)?;
        print!("\x1b[?1049h");
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        print!("\x1b[m\x1b[2J\x1b[?1049l");
        let _ = io::stdout().flush();
        let _ = tcsetattr(io::stdin().as_fd(), SetArg::TCSAFLUSH, &self.saved);
    }
}

/// The hangup flag plus a self-pipe that wakes the poll (SIGWINCH only wakes it to redraw).
struct Signals {
    /// Set by SIGHUP or SIGTERM: save and leave.
    hangup: Arc<AtomicBool>,
    /// Read end of the self-pipe signal-hook writes to.
    wake: UnixStream,
    /// Registrations to undo on drop.
    ids: Vec<signal_hook::SigId>,
}

impl Signals {
    fn install() -> io::Result<Signals> {
        use signal_hook::consts::{SIGHUP, SIGTERM, SIGWINCH};
        let (wake, notify) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        notify.set_nonblocking(true)?;
        let hangup = Arc::new(AtomicBool::new(false));
        let mut ids = Vec::new();
        for sig in [SIGHUP, SIGTERM] {
            ids.push(signal_hook::flag::register(sig, Arc::clone(&hangup))?);
        }
        for sig in [SIGWINCH, SIGHUP, SIGTERM] {
            ids.push(signal_hook::low_level::pipe::register(
                sig,
                notify.try_clone()?,
            )?);
        }
        Ok(Signals { hangup, wake, ids })
    }

    /// Empties the self-pipe so the next poll blocks again.
    fn drain(&self) {
        let mut buf = [0u8; 32];
        while matches!(io::Read::read(&mut &self.wake, &mut buf), Ok(n) if n > 0) {}
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_terminals_get_a_notice_instead_of_the_map() {
        let w = World::generate(&mut Rng::new(5));
        let small = render(&w, Mode::Playing, "", "p", (79, 24));
        assert!(small.contains("needs at least 80x24") && !small.contains('@'));
        let full = render(&w, Mode::Playing, "", "p", (80, 24));
        assert!(full.contains('@') && full.contains("Moves: 0"));
    }

    #[test]
    fn arguments_are_parsed_and_names_sanitised() {
        let args: Vec<String> = ["--name", "\x1b[2Jbob", "--save", "/tmp/x"]
            .map(String::from)
            .into();
        assert_eq!(
            parse_args(&args),
            Ok((Some(PathBuf::from("/tmp/x")), "[2Jbob".into()))
        );
        assert!(parse_args(&["--save".into()]).is_err());
        assert!(parse_args(&["--shell".into(), "sh".into()]).is_err());
    }

    #[test]
    fn a_save_file_is_resumed_once_and_then_consumed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("amulet.save");
        let mut w = World::generate(&mut Rng::new(9));
        w.step(1, 0);
        save_to(Some(&path), &w).expect("save");
        let (resumed, msg) = resume_or_new(Some(&path));
        assert_eq!((resumed, msg.contains("restored")), (w, true));
        assert!(!path.exists());
    }
}
