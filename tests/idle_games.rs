//! Many idle games at once: 200 russh sessions each running `cat` in a PTY. The server must
//! wait on idle PTYs by readiness polling, not by parking one io_uring kernel worker
//! (`iou-wrk-*` thread) per blocked PTY read; and closing every session must end and reap
//! every game.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{
    children_of, connect, new_ed25519_key, raise_nofile, wait_until_async, Client, Login, ProcInfo,
    Server, Term, ALICE, IO_TIMEOUT,
};
use russh::client::Handle;
use russh::{Disconnect, Preferred};

/// Sessions held open at once.
const SESSIONS: usize = 200;
/// Sessions opened concurrently per batch (bounds the handshake burst).
const BATCH: usize = 20;
/// Bounds each batch and each global wait; generous for a debug build on 2 shared cores.
const STEP_TIMEOUT: Duration = Duration::from_secs(120);
/// io_uring's own workers for one-off blocking work exit after a few idle seconds; a worker
/// parked on a PTY read never does. Waiting this long for the count to reach 0 tells the two
/// apart without asserting on any duration.
const WORKER_SETTLE: Duration = Duration::from_secs(30);

/// Opens one session running `cat` and proves it is live with one echoed line (typed right
/// after the exec reply, i.e. usually while the game is still starting).
async fn open_cat(port: u16, server_pid: i32, login: Login, i: usize) -> (Handle<Client>, Term) {
    let h = connect(port, Preferred::default(), ALICE, &login).await;
    let mut t = Term::start(&h, 80, 24, "cat").await;
    let tag = format!("idle-{i}-up");
    t.send(format!("{tag}\r").as_bytes()).await;
    if !t
        .try_read_until(IO_TIMEOUT, |o| o.matches(tag.as_str()).count() >= 2)
        .await
    {
        // Tell "the line never reached the PTY" from "the session is dead": a second line,
        // and which cats never read any input (/proc/PID/io wchar 0: cat copies what it reads).
        let silent: Vec<i32> = children_of(server_pid)
            .iter()
            .filter(|c| c.comm == "cat" && written_bytes(c.pid) == Some(0))
            .map(|c| c.pid)
            .collect();
        t.send(b"second-line\r").await;
        let second = t
            .try_read_until(IO_TIMEOUT, |o| o.matches("second-line").count() >= 2)
            .await;
        panic!(
            "session {i}: the first line typed into cat never came back (second line came \
             back: {second}); cats that never got input: {silent:?}; output {:?}",
            t.text()
        );
    }
    (h, t)
}

/// `wchar` of `/proc/PID/io`: bytes the process wrote.
fn written_bytes(pid: i32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .and_then(|v| v.trim().parse().ok())
}

/// The message of a session task that panicked.
fn panic_text(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return e.to_string();
    }
    let p = e.into_panic();
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "non-text panic".to_owned())
}

/// Server threads named like io_uring workers.
fn io_workers(server: &Server) -> Vec<String> {
    server
        .thread_names()
        .into_iter()
        .filter(|n| n.starts_with("iou-wrk"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_idle_cat_games_park_no_io_uring_workers_and_are_all_reaped() {
    // Server: ~3 fds per session (socket, PTY master, pidfd); client: 1 socket per session.
    let limit = raise_nofile(8192);
    assert!(
        limit >= 4 * SESSIONS as u64 + 256,
        "RLIMIT_NOFILE hard limit too low for this test: {limit}"
    );
    // The games all run as one account: give them room under RLIMIT_NPROC.
    let mut server = Server::start(&[], |cfg| {
        cfg["game_limits"] = serde_json::json!({
            "core_bytes": 0, "cpu_seconds": 3600, "processes": 4096,
            "address_space_bytes": 4294967296u64,
        });
    });
    let key = Arc::new(new_ed25519_key());
    server.add_key(ALICE, &key);
    let login = Login::Key(key);

    let mut sessions: Vec<(Handle<Client>, Term)> = Vec::with_capacity(SESSIONS);
    for start in (0..SESSIONS).step_by(BATCH) {
        let mut batch = tokio::task::JoinSet::new();
        for i in start..(start + BATCH).min(SESSIONS) {
            batch.spawn(open_cat(server.port, server.pid, login.clone(), i));
        }
        let mut failures = Vec::new();
        let joined = tokio::time::timeout(STEP_TIMEOUT, async {
            while let Some(r) = batch.join_next().await {
                match r {
                    Ok(s) => sessions.push(s),
                    Err(e) => failures.push(panic_text(e)),
                }
            }
        })
        .await;
        assert!(
            joined.is_ok() && failures.is_empty(),
            "batch from {start}: {} sessions failed ({failures:?}), finished: {}\nlog:\n{}",
            failures.len(),
            joined.is_ok(),
            server.log_tail()
        );
    }
    assert_eq!(sessions.len(), SESSIONS);

    let running = |server: &Server| -> Vec<ProcInfo> {
        server
            .children()
            .into_iter()
            .filter(|p| p.comm == "cat" && p.state != 'Z')
            .collect()
    };
    let cats = wait_until_async(STEP_TIMEOUT, || {
        let c = running(&server);
        (c.len() == SESSIONS).then_some(c)
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "expected {SESSIONS} running cat children, have {}",
            running(&server).len()
        )
    });

    // Every game is idle, blocked reading its PTY. No kernel worker may be parked for them.
    assert!(
        server
            .thread_names()
            .iter()
            .any(|n| n.starts_with("dg-core")),
        "cannot read the server's thread names: {:?}",
        server.thread_names()
    );
    let first = io_workers(&server);
    let settled = wait_until_async(WORKER_SETTLE, || {
        io_workers(&server).is_empty().then_some(())
    })
    .await;
    assert!(
        settled.is_some(),
        "{} iou-wrk threads with {SESSIONS} idle games (first look: {}); io_uring is parking a \
         worker per blocked read instead of polling\nthreads: {:?}",
        io_workers(&server).len(),
        first.len(),
        server.thread_names()
    );

    // Still live after the check: the last session echoes.
    if let Some((_, t)) = sessions.last_mut() {
        t.send(b"still-here\r").await;
        t.expect_count("still-here", 2).await;
    }

    for (h, t) in sessions {
        drop(t);
        let _ = h.disconnect(Disconnect::ByApplication, "", "en").await;
    }
    let left = wait_until_async(STEP_TIMEOUT, || {
        let alive: Vec<&ProcInfo> = cats.iter().filter(|c| c.still_exists()).collect();
        alive.is_empty().then_some(())
    })
    .await;
    if left.is_none() {
        let alive: Vec<&ProcInfo> = cats.iter().filter(|c| c.still_exists()).collect();
        panic!(
            "{} of {SESSIONS} cats not reaped after every session closed: {:?}\nlog:\n{}",
            alive.len(),
            alive.iter().take(10).collect::<Vec<_>>(),
            server.log_tail()
        );
    }
    server.assert_idle("after closing every session");
    server.stop();
}
