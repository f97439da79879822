//! The real binary against a real third-party SSH client (`russh`): logins, every
//! kex × cipher pair both sides implement, PTY games, window-change, hang-up on disconnect,
//! and refusal of unknown game ids.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;

use common::{
    connect, connect_cuttable, new_ed25519_key, preferred, wait_until_async, Login, ProcInfo,
    ScriptGame, Server, Term, ALICE, ALICE_PW, IO_TIMEOUT,
};
use russh::{cipher, kex, Disconnect, Preferred};

/// Key exchanges of the server's list that russh implements (russh has no sntrup761).
const KEX: [kex::Name; 3] = [
    kex::MLKEM768X25519_SHA256,
    kex::CURVE25519,
    kex::CURVE25519_PRE_RFC_8731,
];

/// The server's ciphers (russh implements all three).
const CIPHERS: [cipher::Name; 3] = [
    cipher::CHACHA20_POLY1305,
    cipher::AES_256_GCM,
    cipher::AES_128_GCM,
];

/// Test-only game: prints the terminal size at start and again after every line it reads.
const SIZE_SCRIPT: &str = "stty size\nwhile IFS= read -r line; do stty size; done\n";

/// Test-only game: writes "hup" to the file named by $1 when it gets SIGHUP; reads nothing,
/// so only a signal can end it.
const HUP_SCRIPT: &str =
    "trap 'echo hup > \"$1\"; exit 0' HUP\necho ready\nwhile :; do sleep 1; done\n";

/// Types a distinct line into `cat` and waits until it is there twice: the PTY's echo plus
/// cat's own copy.
async fn round_trip(t: &mut Term, tag: &str) {
    t.send(format!("{tag}\r").as_bytes()).await;
    t.expect_count(tag, 2).await;
}

/// The one `cat` child of the server (waits for it to appear).
async fn the_cat(server: &Server) -> ProcInfo {
    wait_until_async(IO_TIMEOUT, || {
        let cats: Vec<ProcInfo> = server
            .children()
            .into_iter()
            .filter(|p| p.comm == "cat")
            .collect();
        (cats.len() == 1).then(|| cats.into_iter().next()).flatten()
    })
    .await
    .unwrap_or_else(|| panic!("no single cat child: {:?}", server.children()))
}

/// Waits until `p` has left the process table (exited and reaped) and the server has no
/// zombie children.
async fn assert_reaped(server: &Server, p: &ProcInfo) {
    let gone = wait_until_async(IO_TIMEOUT, || {
        let zombies = server.children().iter().any(|c| c.state == 'Z');
        (!p.still_exists() && !zombies).then_some(())
    })
    .await;
    assert!(
        gone.is_some(),
        "game {p:?} not reaped: now {:?}; server children {:?}\nlog:\n{}",
        ProcInfo::read(p.pid),
        server.children(),
        server.log_tail()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_and_ed25519_logins_play_cat_over_every_kex_and_cipher() {
    let mut server = Server::start(&[], |_| {});
    let key = Arc::new(new_ed25519_key());
    server.add_key(ALICE, &key);
    let logins = [
        ("password", Login::Password(ALICE_PW.to_owned())),
        ("ed25519", Login::Key(key)),
    ];
    for k in KEX {
        for c in CIPHERS {
            for (how, login) in &logins {
                let h = connect(server.port, preferred(k, c), ALICE, login).await;
                let mut t = Term::start(&h, 80, 24, "cat").await;
                round_trip(&mut t, &format!("ping-{}-{}-{how}", k.as_ref(), c.as_ref())).await;
                round_trip(&mut t, "second-line").await;
                // ^D at the start of a line: cat reads EOF and exits 0.
                t.send(b"\x04").await;
                let status = t.wait_exit().await;
                assert_eq!(
                    status,
                    Some(0),
                    "cat's exit status over {k:?}/{c:?}/{how}; output {:?}",
                    t.text()
                );
                h.disconnect(Disconnect::ByApplication, "", "en")
                    .await
                    .expect("disconnect");
            }
        }
    }
    server.assert_idle("after every cat exited");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_with_a_wrong_password_is_refused() {
    let server = Server::start(&[], |_| {});
    let mut h = russh::client::connect(
        common::client_config(Preferred::default()),
        ("127.0.0.1", server.port),
        common::Client,
    )
    .await
    .expect("connect");
    let res = tokio::time::timeout(
        IO_TIMEOUT,
        h.authenticate_password(ALICE, "not-her-password"),
    )
    .await
    .expect("auth timed out")
    .expect("auth exchange");
    assert!(!res.success(), "a wrong password was accepted");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_change_reaches_the_game() {
    let size = ScriptGame {
        id: "size",
        body: SIZE_SCRIPT,
        args: &[],
    };
    let mut server = Server::start(&[size], |_| {});
    let h = connect(server.port, Preferred::default(), ALICE, &password()).await;
    let mut t = Term::start(&h, 80, 24, "size").await;
    t.expect_count("24 80", 1).await;
    t.channel
        .window_change(100, 40, 0, 0)
        .await
        .expect("window-change");
    t.send(b"go\r").await;
    t.expect_count("40 100", 1).await;
    t.channel
        .window_change(132, 50, 0, 0)
        .await
        .expect("window-change");
    t.send(b"again\r").await;
    t.expect_count("50 132", 1).await;
    h.disconnect(Disconnect::ByApplication, "", "en")
        .await
        .expect("disconnect");
    server.assert_idle("after the size game's connection closed");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disconnect_while_cat_runs_ends_and_reaps_it() {
    let mut server = Server::start(&[], |_| {});
    let h = connect(server.port, Preferred::default(), ALICE, &password()).await;
    let mut t = Term::start(&h, 80, 24, "cat").await;
    round_trip(&mut t, "before-disconnect").await;
    let cat = the_cat(&server).await;
    h.disconnect(Disconnect::ByApplication, "bye", "en")
        .await
        .expect("disconnect");
    assert_reaped(&server, &cat).await;
    server.assert_idle("after the disconnect");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_connection_sends_sighup_to_the_game_and_reaps_it() {
    let hup = ScriptGame {
        id: "hup",
        body: HUP_SCRIPT,
        args: &["{dir}/marks/hup"],
    };
    let mut server = Server::start(&[hup], |_| {});
    // Games run as the `games` user when the server is root: the mark dir must be writable.
    let marks = server.dir().join("marks");
    fs::create_dir(&marks).expect("marks dir");
    fs::set_permissions(&marks, fs::Permissions::from_mode(0o777)).expect("chmod marks");
    let (h, sock) = connect_cuttable(server.port, ALICE, &password()).await;
    let mut t = Term::start(&h, 80, 24, "hup").await;
    t.expect_count("ready", 1).await;
    let game = wait_until_async(IO_TIMEOUT, || {
        server.children().into_iter().find(|p| p.comm == "sh")
    })
    .await
    .unwrap_or_else(|| panic!("no sh game child: {:?}", server.children()));
    // No SSH goodbye: the TCP connection just ends.
    sock.shutdown(std::net::Shutdown::Both).expect("shutdown");
    drop(t);
    drop(h);
    assert_reaped(&server, &game).await;
    let mark = fs::read_to_string(marks.join("hup")).unwrap_or_default();
    assert_eq!(
        mark.trim(),
        "hup",
        "the game did not get SIGHUP\nlog:\n{}",
        server.log_tail()
    );
    server.assert_idle("after the cut connection");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_of_an_unknown_game_id_exits_1_with_a_message() {
    let mut server = Server::start(&[], |_| {});
    let h = connect(server.port, Preferred::default(), ALICE, &password()).await;
    let mut t = Term::open_pty(&h, 80, 24).await;
    // The server may accept the request and then report, or refuse it; either way the
    // channel must end with status 1 and say why.
    let _accepted = t.exec("no-such-game").await;
    let status = t.wait_exit().await;
    assert_eq!(status, Some(1), "exit status; output {:?}", t.text());
    let text = t.text();
    assert!(
        text.contains("no-such-game") && text.contains("not a game"),
        "message should name the id and say it is not a game: {text:?}"
    );
    assert!(
        text.contains("cat"),
        "message should list the games: {text:?}"
    );
    server.assert_idle("after the refused exec");
    server.stop();
}

/// Alice's password login.
fn password() -> Login {
    Login::Password(ALICE_PW.to_owned())
}
