//! A server on a machine where io_uring is blocked (a container's seccomp profile, say) says
//! so at start — what is missing and how to enable it — and exits with status 2. The block is
//! a seccomp filter installed in the child before it execs the server, failing
//! `io_uring_setup` with EPERM as Docker's default profile does.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// x86_64 `io_uring_setup`.
const SYS_IO_URING_SETUP: u32 = 425;

/// A filter: on x86_64, `io_uring_setup` fails with EPERM; everything else is allowed.
fn block_io_uring() -> std::io::Result<()> {
    const BPF_LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const BPF_JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const BPF_RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    let ins = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    let filter = [
        // seccomp_data.arch (offset 4): not x86_64 → allow (the test only runs there).
        ins(BPF_LD_W_ABS, 0, 0, 4),
        ins(BPF_JEQ_K, 0, 3, AUDIT_ARCH_X86_64),
        // seccomp_data.nr (offset 0).
        ins(BPF_LD_W_ABS, 0, 0, 0),
        ins(BPF_JEQ_K, 0, 1, SYS_IO_URING_SETUP),
        ins(BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | libc::EPERM as u32),
        ins(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: plain prctl calls with a filter program that outlives them.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &prog as *const libc::sock_fprog,
        ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[test]
#[cfg(target_arch = "x86_64")]
fn without_io_uring_the_server_says_how_to_enable_it_and_exits_with_status_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = dir.path().join("cfg.yaml");
    std::fs::write(
        &cfg,
        format!(
            "ssh: {{ listen: \"127.0.0.1:0\" }}\nhttp: {{ listen: \"127.0.0.1:0\" }}\n\
             data_dir: \"{}\"\ngames_as_server_user: true\n\
             games: [{{ id: cat, name: Cat, command: /bin/cat }}]\n",
            dir.path().join("data").display()
        ),
    )
    .expect("config");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dungeongate"));
    cmd.arg("--config").arg(&cfg);
    // SAFETY: the closure only makes system calls (no allocation, no locks) between fork
    // and exec.
    unsafe {
        cmd.pre_exec(block_io_uring);
    }
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("run the server");
    // A server that started after all (the block did not take) is stopped, not waited for.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break Some(s);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    let status = status.expect("the server kept running with io_uring blocked");
    assert_eq!(status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains("io_uring") && stderr.contains("seccomp"),
        "the message should say what is missing and how to enable it: {stderr}"
    );
    assert!(
        stderr.contains("kernel.io_uring_disabled"),
        "the message should name the sysctl: {stderr}"
    );
}
