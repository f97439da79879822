//! Real-process tests: each spawns a program on a PTY and talks to it through the master.

use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use super::*;

/// Upper bound for any single wait, so a broken test fails instead of hanging.
const POLL_MS: libc::c_int = 10_000;

fn game_user(name: &str) -> Option<RunAs> {
    nix::unistd::geteuid()
        .is_root()
        .then(|| lookup_run_as(name).expect("test user exists"))
}

fn spec(program: &str, args: &[&str]) -> SpawnSpec {
    SpawnSpec {
        program: PathBuf::from(program),
        args: args.iter().map(OsString::from).collect(),
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        cwd: Some(PathBuf::from("/")),
        size: WinSize {
            cols: 80,
            rows: 24,
            px_width: 0,
            px_height: 0,
        },
        run_as: game_user("nobody"),
        rlimits: Rlimits::default(),
    }
}

fn sh(script: &str) -> SpawnSpec {
    spec("/bin/sh", &["-c", script])
}

fn poll_in(fd: BorrowedFd<'_>) -> bool {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut pfd, 1, POLL_MS) > 0 }
}

/// Reads from the master until `done(output)` holds, EOF/EIO, or a wait times out.
fn read_until(master: &OwnedFd, done: impl Fn(&str) -> bool) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !done(&String::from_utf8_lossy(&out)) {
        if !poll_in(master.as_fd()) {
            break;
        }
        match nix::unistd::read(master, &mut buf) {
            Ok(0) | Err(nix::errno::Errno::EIO) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(nix::errno::Errno::EAGAIN) => continue,
            Err(e) => panic!("read from master: {e}"),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn read_to_end(master: &OwnedFd) -> String {
    read_until(master, |_| false)
}

fn write_all(master: &OwnedFd, mut data: &[u8]) {
    while !data.is_empty() {
        match nix::unistd::write(master, data) {
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EAGAIN) => continue,
            Err(e) => panic!("write to master: {e}"),
        }
    }
}

fn wait_exit(child: &mut PtyChild) -> ExitStatus {
    assert!(poll_in(child.pidfd()), "child did not exit");
    child.try_wait().expect("waitid").expect("exited")
}

fn is_zombie_child_of_us(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // Fields after the parenthesised command name: state, ppid, ...
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let mut fields = rest.split(' ');
    let state = fields.next();
    let ppid = fields.next().and_then(|p| p.parse::<u32>().ok());
    state == Some("Z") && ppid == Some(std::process::id())
}

#[test]
fn cat_echoes_what_is_written_to_the_master() {
    let child = spawn(&spec("/bin/cat", &[])).expect("spawn cat");
    let master = child.clone_master().expect("dup master");
    write_all(&master, b"hello\n");
    let out = read_until(&master, |s| s.matches("hello").count() >= 2);
    assert_eq!(out, "hello\r\nhello\r\n");
}

#[test]
fn stty_size_reports_the_spawned_then_the_resized_size() {
    let mut s = sh("stty size; read x; stty size");
    s.size.cols = 100;
    s.size.rows = 30;
    let child = spawn(&s).expect("spawn");
    let master = child.clone_master().expect("dup master");
    assert_eq!(read_until(&master, |s| s.contains('\n')), "30 100\r\n");
    child
        .resize(WinSize {
            cols: 120,
            rows: 40,
            px_width: 0,
            px_height: 0,
        })
        .expect("resize");
    write_all(&master, b"\n");
    assert_eq!(read_to_end(&master), "\r\n40 120\r\n");
}

#[test]
fn exit_status_of_sh_exit_3_is_exited_3() {
    let mut child = spawn(&sh("exit 3")).expect("spawn");
    assert_eq!(wait_exit(&mut child), ExitStatus::Exited(3));
    // Cached: asking again does not fail even though the process is gone.
    assert_eq!(
        child.try_wait().expect("cached"),
        Some(ExitStatus::Exited(3))
    );
}

#[test]
fn hangup_ends_sleep_and_try_wait_reports_sighup() {
    let mut child = spawn(&spec("/bin/sleep", &["100"])).expect("spawn");
    assert_eq!(child.try_wait().expect("waitid"), None);
    child.hangup().expect("hangup");
    assert_eq!(wait_exit(&mut child), ExitStatus::Signaled(libc::SIGHUP));
    assert!(
        child.signal(Signal::SIGTERM).is_err(),
        "reaped group is never signalled"
    );
}

#[test]
fn core_and_cpu_limits_are_applied_before_exec() {
    let mut s = sh("ulimit -c; ulimit -t");
    s.rlimits.core_bytes = Some(0);
    s.rlimits.cpu_seconds = Some(77);
    let child = spawn(&s).expect("spawn");
    assert_eq!(
        read_to_end(&child.clone_master().expect("dup")),
        "0\r\n77\r\n"
    );
}

#[test]
fn environment_is_exactly_the_given_one() {
    let mut s = spec("/usr/bin/env", &[]);
    s.env.push(("GAME_VAR".into(), "a b=c".into()));
    let child = spawn(&s).expect("spawn");
    let out = read_to_end(&child.clone_master().expect("dup"));
    let mut lines: Vec<&str> = out.split("\r\n").collect();
    lines.sort_unstable();
    assert_eq!(lines, ["", "GAME_VAR=a b=c", "PATH=/usr/bin:/bin"]);
}

#[test]
fn child_has_a_controlling_utf8_cooked_terminal() {
    let child = spawn(&sh("echo ctty > /dev/tty && stty -a")).expect("spawn");
    let out = read_to_end(&child.clone_master().expect("dup"));
    assert!(out.starts_with("ctty\r\n"), "{out}");
    let words: Vec<&str> = out.split_whitespace().collect();
    for flag in ["iutf8", "icanon", "echo", "isig", "icrnl", "onlcr"] {
        assert!(words.contains(&flag), "missing {flag} in {out}");
    }
}

#[test]
fn working_directory_is_entered() {
    let mut s = spec("/bin/pwd", &[]);
    s.cwd = Some(PathBuf::from("/tmp"));
    let child = spawn(&s).expect("spawn");
    assert_eq!(read_to_end(&child.clone_master().expect("dup")), "/tmp\r\n");
}

#[test]
fn no_zombie_remains_after_reaping_or_dropping() {
    let mut exited = spawn(&sh("exit 0")).expect("spawn");
    let exited_pid = exited.pid();
    wait_exit(&mut exited);
    drop(exited);
    let running = spawn(&spec("/bin/sleep", &["100"])).expect("spawn");
    let running_pid = running.pid();
    drop(running);
    let unreaped = spawn(&sh("exit 0")).expect("spawn");
    let unreaped_pid = unreaped.pid();
    assert!(poll_in(unreaped.pidfd()));
    drop(unreaped);
    for pid in [exited_pid, running_pid, unreaped_pid] {
        assert!(!is_zombie_child_of_us(pid), "pid {pid} left a zombie");
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }
}

#[test]
fn running_as_root_without_run_as_is_refused() {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let mut s = sh("exit 0");
    s.run_as = None;
    assert!(matches!(spawn(&s), Err(PtyError::RootWithoutRunAs)));
}

#[test]
fn run_as_the_root_account_is_refused() {
    let mut s = sh("exit 0");
    s.run_as = Some(lookup_run_as("root").expect("root exists"));
    assert!(matches!(spawn(&s), Err(PtyError::RunAsRoot { .. })));
}

#[test]
fn game_runs_as_the_requested_user_and_groups() {
    for name in ["nobody", "games"] {
        let Some(user) = game_user(name) else { return };
        let mut s = sh("id -u; id -g; id -G");
        s.run_as = Some(user.clone());
        let child = spawn(&s).expect("spawn");
        let out = read_to_end(&child.clone_master().expect("dup"));
        let lines: Vec<&str> = out.lines().map(str::trim_end).collect();
        assert_eq!(lines.first(), Some(&user.uid.to_string().as_str()), "{out}");
        assert_eq!(lines.get(1), Some(&user.gid.to_string().as_str()), "{out}");
        assert!(
            !lines.get(2).unwrap_or(&"0").split(' ').any(|g| g == "0"),
            "{out}"
        );
    }
}

#[test]
fn unknown_user_and_missing_program_are_errors() {
    assert!(matches!(
        lookup_run_as("no-such-user-dg"),
        Err(PtyError::UnknownUser(_))
    ));
    assert!(matches!(
        spawn(&spec("/nonexistent/game", &[])),
        Err(PtyError::Spawn { .. })
    ));
}

#[test]
fn ssh_signal_names_map_to_signals() {
    assert_eq!(signal_from_ssh_name("HUP"), Some(Signal::SIGHUP));
    assert_eq!(signal_from_ssh_name("SEGV"), Some(Signal::SIGSEGV));
    assert_eq!(signal_from_ssh_name("SIGHUP"), None);
    assert_eq!(signal_from_ssh_name("hup"), None);
}

/// The `Sig…` lines of a /proc status file, by name.
fn signal_sets(status: &str) -> Vec<(String, String)> {
    status
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| ["SigBlk", "SigIgn", "SigCgt"].contains(k))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect()
}

#[test]
fn game_starts_with_no_signal_blocked_ignored_or_caught() {
    // The test process itself ignores SIGPIPE (Rust's runtime does) and may block others.
    let child = spawn(&spec("/bin/cat", &["/proc/self/status"])).expect("spawn");
    let out = read_to_end(&child.clone_master().expect("dup"));
    let sets = signal_sets(&out);
    assert_eq!(sets.len(), 3, "{out}");
    for (name, value) in sets {
        assert_eq!(value, "0000000000000000", "{name} of the game: {out}");
    }
}

#[test]
fn dropping_privileges_in_the_game_leaves_every_server_thread_root() {
    let Some(user) = game_user("games") else {
        return;
    };
    // A helper thread stands for the other cores: glibc's set*id broadcast would reach it.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let helper = std::thread::spawn(move || {
        let _ = rx.recv();
    });
    let mut s = sh("id -u");
    s.run_as = Some(user.clone());
    let child = spawn(&s).expect("spawn");
    let out = read_to_end(&child.clone_master().expect("dup"));
    assert_eq!(out.trim_end(), user.uid.to_string());
    let tasks = std::fs::read_dir("/proc/self/task").expect("tasks");
    for task in tasks.flatten() {
        // Other tests' threads come and go meanwhile: one that ended has no status to read.
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            continue;
        };
        let Some(uid) = status.lines().find(|l| l.starts_with("Uid:")) else {
            continue;
        };
        assert_eq!(
            uid.split_whitespace().skip(1).collect::<Vec<_>>(),
            ["0", "0", "0", "0"],
            "thread {:?} of the server changed identity",
            task.file_name()
        );
    }
    let _ = tx.send(());
    let _ = helper.join();
}

#[test]
fn a_bare_program_name_is_found_along_the_games_path() {
    let child = spawn(&spec("echo", &["found"])).expect("spawn echo by name");
    assert_eq!(
        read_to_end(&child.clone_master().expect("dup")),
        "found\r\n"
    );
    let mut s = spec("echo", &[]);
    s.env = vec![("PATH".into(), "/nonexistent".into())];
    assert!(matches!(
        spawn(&s),
        Err(PtyError::Spawn { source, .. }) if source.raw_os_error() == Some(libc::ENOENT)
    ));
}

#[test]
fn an_exec_failure_reports_its_errno_and_leaves_no_zombie() {
    // Not executable: execve fails in the child with EACCES, after every other step.
    let err = spawn(&spec("/etc/passwd", &[])).expect_err("not executable");
    assert!(
        matches!(&err, PtyError::Spawn { source, .. } if source.raw_os_error() == Some(libc::EACCES)),
        "{err}"
    );
    // A step before exec fails: a working directory that does not exist.
    let mut s = spec("/bin/true", &[]);
    s.cwd = Some(PathBuf::from("/nonexistent/dir"));
    let err = spawn(&s).expect_err("missing cwd");
    assert!(
        matches!(&err, PtyError::Spawn { source, .. } if source.raw_os_error() == Some(libc::ENOENT)),
        "{err}"
    );
    // A child that failed before exec still has this test binary's name; none may be left
    // as a zombie (other tests' children have exec'd and carry their program's name).
    let own = std::fs::read_to_string("/proc/self/comm").expect("comm");
    let leftovers: Vec<i32> = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c == own)
                && is_zombie_child_of_us(*pid)
        })
        .collect();
    assert!(leftovers.is_empty(), "unreaped children: {leftovers:?}");
}

#[test]
fn path_lookup_skips_a_file_the_game_may_not_run_and_reports_eacces_if_none_may() {
    use std::os::unix::fs::PermissionsExt as _;
    let root = std::env::temp_dir().join(format!("dg-path-{}", std::process::id()));
    let (denied, allowed) = (root.join("denied"), root.join("allowed"));
    for (dir, mode, text) in [(&denied, 0o644, "first"), (&allowed, 0o755, "second")] {
        std::fs::create_dir_all(dir).expect("mkdir");
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
        let prog = dir.join("dg-path-prog");
        std::fs::write(&prog, format!("#!/bin/sh\necho {text}\n")).expect("write");
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).expect("chmod root");
    let path = format!("{}:{}:/usr/bin:/bin", denied.display(), allowed.display());
    let mut s = spec("dg-path-prog", &[]);
    s.env = vec![("PATH".into(), path.into())];
    let child = spawn(&s).expect("the second candidate runs");
    assert_eq!(
        read_to_end(&child.clone_master().expect("dup")),
        "second\r\n"
    );

    let mut s = spec("dg-path-prog", &[]);
    s.env = vec![("PATH".into(), denied.clone().into_os_string())];
    assert!(matches!(
        spawn(&s),
        Err(PtyError::Spawn { source, .. }) if source.raw_os_error() == Some(libc::EACCES)
    ));
    let _ = std::fs::remove_dir_all(&root);
}
