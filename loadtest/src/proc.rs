//! CPU time and memory of a server's process tree, read from `/proc`, and the client's own CPU.
//!
//! * CPU: `/proc/PID/task/*/schedstat` (first field: nanoseconds on a CPU, exact) for live
//!   processes, plus `cutime + cstime` from `/proc/PID/stat` for children already reaped. The
//!   10 ms ticks of `utime` lose the CPU of thousands of short-lived processes; schedstat does
//!   not, and the reaped children's total is accumulated by the kernel in nanoseconds.
//! * Memory: PSS from `/proc/PID/smaps_rollup` (shared pages divided among their users), summed
//!   over the tree. Summed RSS would count shared libraries once per process.
//!
//! A process is a *game* if its command name is one of the given names, or it descends from
//! one; everything else below the server's pid (per-connection `sshd`/`dropbear` children)
//! belongs to the server. CPU of reaped children cannot be attributed and counts as server.

use std::collections::HashMap;
use std::fs;

use serde::Serialize;

/// One reading of a server's process tree.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct TreeSample {
    /// CPU nanoseconds of the server's own processes (root and non-game descendants, including
    /// all reaped children).
    pub server_cpu_ns: u64,
    /// CPU nanoseconds of live game processes (and their reaped children).
    pub game_cpu_ns: u64,
    /// PSS of the server's own processes, KiB.
    pub server_pss_kib: u64,
    /// PSS of the game processes, KiB.
    pub game_pss_kib: u64,
    /// Live server processes, root included.
    pub server_procs: u64,
    /// Live game processes.
    pub game_procs: u64,
}

/// Reads the tree under `root`. Memory (the costly part) only when `with_mem`. `None` if the
/// root process is gone.
pub fn sample_tree(root: i32, game_comms: &[String], with_mem: bool) -> Option<TreeSample> {
    let root_stat = read_stat(root)?;
    let procs = all_stats();
    let mut children: HashMap<i32, Vec<&Stat>> = HashMap::new();
    for s in &procs {
        children.entry(s.ppid).or_default().push(s);
    }
    let mut out = TreeSample::default();
    // (pid, is_game) work list; the root itself is never a game.
    let mut todo: Vec<(i32, bool, Option<&Stat>)> = vec![(root, false, None)];
    while let Some((pid, parent_game, stat)) = todo.pop() {
        let stat = stat.unwrap_or(&root_stat);
        let game = parent_game || (pid != root && game_comms.contains(&stat.comm));
        let cpu = task_cpu_ns(pid).saturating_add(stat.children_cpu_ns);
        let pss = if with_mem { pss_kib(pid) } else { 0 };
        if game {
            out.game_cpu_ns = out.game_cpu_ns.saturating_add(cpu);
            out.game_pss_kib = out.game_pss_kib.saturating_add(pss);
            out.game_procs += 1;
        } else {
            out.server_cpu_ns = out.server_cpu_ns.saturating_add(cpu);
            out.server_pss_kib = out.server_pss_kib.saturating_add(pss);
            out.server_procs += 1;
        }
        for c in children.get(&pid).map(Vec::as_slice).unwrap_or(&[]) {
            todo.push((c.pid, game, Some(c)));
        }
    }
    Some(out)
}

/// CPU nanoseconds this process has used (all threads, user and system, live and exited).
pub fn self_cpu_ns() -> u64 {
    // SAFETY: getrusage writes into the zeroed struct we pass and reads nothing else.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut ru) != 0 {
            return 0;
        }
        ru
    };
    let tv_ns = |tv: libc::timeval| {
        u64::try_from(tv.tv_sec)
            .unwrap_or(0)
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::try_from(tv.tv_usec).unwrap_or(0).saturating_mul(1_000))
    };
    tv_ns(ru.ru_utime).saturating_add(tv_ns(ru.ru_stime))
}

/// CPU nanoseconds every CPU of the machine has spent busy (all but idle and iowait), from
/// the first line of `/proc/stat`: with the server's, the games' and the client's own CPU it
/// tells how much other work shared the machine during a run.
pub fn machine_busy_ns() -> Option<u64> {
    let text = fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    // user nice system idle iowait irq softirq steal (guest time is inside user already).
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|v| v.parse().ok())
        .collect();
    let busy: u64 = f
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != 3 && i != 4)
        .map(|(_, v)| *v)
        .sum();
    Some(busy.saturating_mul(1_000_000_000) / clock_ticks())
}

/// Live processes whose parent is `pid` (for settling: waiting until the server's
/// per-connection children are gone).
pub fn child_count(pid: i32) -> usize {
    all_stats().iter().filter(|s| s.ppid == pid).count()
}

/// Host limits that cap how many sessions with a PTY a server can hold, whatever its design.
#[derive(Debug, Clone, Copy)]
pub struct SessionCeiling {
    /// The server's soft `RLIMIT_NOFILE` ("Max open files" in `/proc/PID/limits`).
    pub server_nofile: Option<u64>,
    /// `kernel.pty.max`, minus the PTYs already open on the machine.
    pub ptys_free: Option<u64>,
}

impl SessionCeiling {
    /// Reads the ceiling for the server `pid`.
    pub fn read(pid: i32) -> SessionCeiling {
        let server_nofile = fs::read_to_string(format!("/proc/{pid}/limits"))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("Max open files"))
                    .and_then(|l| l.split_whitespace().nth(3))
                    .and_then(|v| v.parse().ok())
            });
        let read_u64 =
            |path: &str| -> Option<u64> { fs::read_to_string(path).ok()?.trim().parse().ok() };
        let ptys_free = read_u64("/proc/sys/kernel/pty/max")
            .zip(read_u64("/proc/sys/kernel/pty/nr"))
            .map(|(max, used)| max.saturating_sub(used));
        SessionCeiling {
            server_nofile,
            ptys_free,
        }
    }

    /// What stops `sessions` from being held, if anything: a line for the reader.
    /// `fds_per_session` is what one session with a game costs the server in descriptors.
    pub fn shortfall(&self, sessions: usize, fds_per_session: u64) -> Option<String> {
        let n = sessions as u64;
        let mut why = Vec::new();
        if let Some(nofile) = self.server_nofile {
            if nofile / fds_per_session.max(1) < n {
                why.push(format!(
                    "the server's RLIMIT_NOFILE is {nofile}, and a single-process server needs \
                     about {fds_per_session} per session with a PTY (raise the hard limit with \
                     `ulimit -Hn` as root)"
                ));
            }
        }
        if let Some(free) = self.ptys_free {
            if free < n {
                why.push(format!(
                    "only {free} PTYs are free (sysctl -w kernel.pty.max=...)"
                ));
            }
        }
        (!why.is_empty()).then(|| format!("{sessions} sessions will not fit: {}", why.join("; ")))
    }
}

/// The fields of `/proc/PID/stat` used here.
#[derive(Debug, Clone)]
struct Stat {
    /// Process id.
    pid: i32,
    /// Parent's pid, to build the tree.
    ppid: i32,
    /// Command name (`comm`), to tell games apart.
    comm: String,
    /// `cutime + cstime` in nanoseconds: CPU of reaped children.
    children_cpu_ns: u64,
}

/// Every readable `/proc/PID/stat`.
fn all_stats() -> Vec<Stat> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(read_stat)
        .collect()
}

/// Parses `/proc/PID/stat`; `None` if the process is gone or the line is odd.
fn read_stat(pid: i32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(pid, &text)
}

/// Parses one stat line. The command name is in parentheses and may itself contain spaces or
/// parentheses, so the fields are read after the last `)`.
fn parse_stat(pid: i32, text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_owned();
    // Fields after ")": state(3) ppid(4) ... cutime(16) cstime(17), 1-based as in proc(5).
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    let field = |n: usize| {
        rest.get(n.checked_sub(3)?)
            .and_then(|s| s.parse::<i64>().ok())
    };
    let ppid = i32::try_from(field(4)?).ok()?;
    let ticks = u64::try_from(field(16)?.saturating_add(field(17)?)).unwrap_or(0);
    Some(Stat {
        pid,
        ppid,
        comm,
        children_cpu_ns: ticks.saturating_mul(1_000_000_000) / clock_ticks(),
    })
}

/// Sum of the first schedstat field over all threads of `pid`.
fn task_cpu_ns(pid: i32) -> u64 {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| fs::read_to_string(e.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .fold(0, u64::saturating_add)
}

/// `Pss:` of `/proc/PID/smaps_rollup` in KiB (0 when unreadable, e.g. a kernel thread).
fn pss_kib(pid: i32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|t| parse_pss(&t))
        .unwrap_or(0)
}

/// Finds the `Pss:` line of a smaps_rollup text.
fn parse_pss(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Clock ticks per second for `cutime`/`cstime`.
fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(t).ok().filter(|&t| t > 0).unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_name_with_spaces_and_parentheses_is_parsed_whole() {
        let line = "42 (my (odd) prog) S 7 42 42 0 -1 4194560 1 0 0 0 5 6 300 200 20 0 1 0";
        let s = parse_stat(42, line).expect("parses");
        assert_eq!(s.comm, "my (odd) prog");
        assert_eq!(s.ppid, 7);
        assert_eq!(s.children_cpu_ns, 500 * 1_000_000_000 / clock_ticks());
    }

    #[test]
    fn pss_is_read_from_its_line_not_from_rss() {
        let text =
            "5600-7f ---p 0 00:00 0 [rollup]\nRss:  1712 kB\nPss:   159 kB\nPss_Anon: 112 kB\n";
        assert_eq!(parse_pss(text), Some(159));
    }

    #[test]
    fn a_child_running_a_game_command_is_counted_apart_from_the_server() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let me = i32::try_from(std::process::id()).expect("pid");
        let games = vec!["sleep".to_owned()];
        let s = sample_tree(me, &games, true).expect("own tree");
        let _ = child.kill();
        let _ = child.wait();
        assert!(s.game_procs >= 1, "{s:?}");
        assert!(s.game_pss_kib > 0, "{s:?}");
        assert!(s.server_pss_kib > 0 && s.server_cpu_ns > 0, "{s:?}");
    }

    #[test]
    fn own_cpu_time_grows_with_work() {
        let before = self_cpu_ns();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        assert!(self_cpu_ns() > before, "{x}");
    }
}
