//! The admin socket: `<data_dir>/admin.sock`, a Unix socket only the server's own user (root,
//! in production) can open (mode 0600, and each peer's credentials are checked). `dungeongate
//! admin …` writes one order as a JSON line and reads one answer line. A thread of its own
//! accepts and waits (blocking, one order at a time: orders are rare and quick); the order
//! goes to the control core through a mailbox, as any request does, and the answer comes back
//! on a channel.

use super::blocking::Post;
use crate::admin::{SessionId, SessionInfo};
use crate::control::{Reply, Request};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// The socket's name in the data directory.
pub const SOCKET_NAME: &str = "admin.sock";
/// The longest order line.
const MAX_ORDER: u64 = 4096;
/// How long a client may take to send its order, and the control core to answer.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// An order as `dungeongate admin` sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "order", rename_all = "snake_case", deny_unknown_fields)]
pub enum Order {
    Sessions,
    Kick {
        session: String,
        reason: Option<String>,
    },
    Broadcast {
        text: String,
    },
    Drain {
        on: bool,
    },
    Lock {
        name: String,
        reason: Option<String>,
    },
    Unlock {
        name: String,
    },
}

/// One session in an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRow {
    pub id: String,
    pub user: Option<String>,
    pub source: String,
    pub game: Option<String>,
    pub watching: bool,
    pub idle_s: u64,
    pub connected_s: u64,
}

/// The answer line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<Vec<SessionRow>>,
}

impl Answer {
    fn error(text: impl Into<String>) -> Answer {
        Answer {
            ok: false,
            error: Some(text.into()),
            sessions: None,
        }
    }
}

/// An order for the control core, and where its answer goes.
pub struct AdminAsk {
    pub request: Request,
    pub answer: mpsc::SyncSender<Reply>,
}

/// Where the socket is for a data directory.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_NAME)
}

/// Bind the socket (replacing a stale one left by an earlier run, but never another kind of
/// file) and serve it on a thread of its own. Failing is logged, not fatal: the server runs
/// without its admin socket.
pub fn start(data_dir: &Path, post: Post<AdminAsk>) {
    let path = socket_path(data_dir);
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.file_type().is_socket() => {
            let _ = std::fs::remove_file(&path);
        }
        Ok(_) => {
            tracing::error!(path = %path.display(), "not a socket in the admin socket's place; running without the admin socket");
            return;
        }
        Err(_) => {}
    }
    let listener = match UnixListener::bind(&path) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "cannot bind the admin socket; running without it");
            return;
        }
    };
    if let Err(e) = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
        tracing::error!(error = %e, "cannot make the admin socket private; closing it");
        let _ = std::fs::remove_file(&path);
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("dg-admin".into())
        .spawn(move || serve(listener, post));
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the admin socket's thread");
    }
}

fn serve(listener: UnixListener, post: Post<AdminAsk>) {
    let me = nix::unistd::geteuid().as_raw();
    for stream in listener.incoming() {
        let Ok(stream) = stream else {
            continue;
        };
        // The file mode already keeps others out; the peer's uid is checked too, so a socket
        // handed over or a mode changed by mistake does not open it up.
        let allowed =
            nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials)
                .is_ok_and(|c| c.uid() == me || c.uid() == 0);
        if !allowed {
            tracing::warn!("admin socket: a connection from another user was refused");
            continue;
        }
        let answer = match read_order(&stream) {
            Ok(order) => carry_out(order, &post),
            Err(e) => Answer::error(e),
        };
        let mut stream = stream;
        if let Ok(mut line) = serde_json::to_string(&answer) {
            line.push('\n');
            let _ = stream.write_all(line.as_bytes());
        }
    }
}

fn read_order(stream: &UnixStream) -> Result<Order, String> {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let mut line = String::new();
    let mut reader = BufReader::new(std::io::Read::take(stream, MAX_ORDER));
    reader
        .read_line(&mut line)
        .map_err(|e| format!("could not read the order: {e}"))?;
    serde_json::from_str(line.trim()).map_err(|e| format!("not an order: {e}"))
}

/// The order as a control-core request, its answer as a line.
fn carry_out(order: Order, post: &Post<AdminAsk>) -> Answer {
    let request = match to_request(order) {
        Ok(r) => r,
        Err(e) => return Answer::error(e),
    };
    let (tx, rx) = mpsc::sync_channel(1);
    post.send(AdminAsk {
        request,
        answer: tx,
    });
    match rx.recv_timeout(ANSWER_TIMEOUT) {
        Ok(reply) => answer_of(reply),
        Err(_) => Answer::error("the server did not answer in time"),
    }
}

pub fn to_request(order: Order) -> Result<Request, String> {
    Ok(match order {
        Order::Sessions => Request::AdminSessions,
        Order::Kick { session, reason } => Request::AdminKick {
            session: session.parse::<SessionId>()?,
            reason: reason.unwrap_or_default(),
        },
        Order::Broadcast { text } => Request::AdminBroadcast { text },
        Order::Drain { on } => Request::AdminDrain { on },
        Order::Lock { name, reason } => Request::AdminLock {
            name,
            locked: true,
            reason,
        },
        Order::Unlock { name } => Request::AdminLock {
            name,
            locked: false,
            reason: None,
        },
    })
}

fn answer_of(reply: Reply) -> Answer {
    match reply {
        Reply::Done(Ok(())) => Answer {
            ok: true,
            error: None,
            sessions: None,
        },
        Reply::Done(Err(e)) => Answer::error(e),
        Reply::Sessions(list) => Answer {
            ok: true,
            error: None,
            sessions: Some(list.iter().map(row).collect()),
        },
        Reply::Unavailable => Answer::error("the server is busy; try again"),
        _ => Answer::error("unexpected answer"),
    }
}

fn row(s: &SessionInfo) -> SessionRow {
    SessionRow {
        id: s.id.to_string(),
        user: s.user.clone(),
        source: s.source.to_string(),
        game: s.game.clone(),
        watching: s.watching,
        idle_s: s.idle_ms / 1000,
        connected_s: s.connected_ms / 1000,
    }
}

/// The client side: send `order` to the server whose data directory is `data_dir`.
pub fn ask(data_dir: &Path, order: &Order) -> Result<Answer, String> {
    let path = socket_path(data_dir);
    let mut stream = UnixStream::connect(&path).map_err(|e| {
        format!(
            "cannot reach the server's admin socket {}: {e} (is the server running, with this data_dir, and are you its user?)",
            path.display()
        )
    })?;
    let _ = stream.set_read_timeout(Some(ANSWER_TIMEOUT + IO_TIMEOUT));
    let mut line = serde_json::to_string(order).map_err(|e| e.to_string())?;
    line.push('\n');
    stream
        .write_all(line.as_bytes())
        .map_err(|e| format!("cannot send the order: {e}"))?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .map_err(|e| format!("no answer from the server: {e}"))?;
    serde_json::from_str(answer.trim()).map_err(|e| format!("a garbled answer: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_become_requests_and_a_bad_session_id_is_refused() {
        let kick = Order::Kick {
            session: "1.2.3".into(),
            reason: Some("spam".into()),
        };
        match to_request(kick) {
            Ok(Request::AdminKick { session, reason }) => {
                assert_eq!(session.to_string(), "1.2.3");
                assert_eq!(reason, "spam");
            }
            other => panic!("{other:?}"),
        }
        assert!(to_request(Order::Kick {
            session: "x".into(),
            reason: None
        })
        .is_err());
        assert!(matches!(
            to_request(Order::Unlock { name: "bob".into() }),
            Ok(Request::AdminLock { locked: false, .. })
        ));
    }

    #[test]
    fn orders_read_from_json_lines_and_unknown_fields_are_refused() {
        let o: Order = serde_json::from_str(r#"{"order":"drain","on":true}"#).expect("order");
        assert_eq!(o, Order::Drain { on: true });
        assert!(serde_json::from_str::<Order>(r#"{"order":"drain","on":true,"x":1}"#).is_err());
        assert!(serde_json::from_str::<Order>(r#"{"order":"reboot"}"#).is_err());
    }

    #[test]
    fn answers_carry_the_list_or_the_error() {
        let a = answer_of(Reply::Done(Err("There is no account named x.".into())));
        assert!(!a.ok);
        assert_eq!(a.error.as_deref(), Some("There is no account named x."));
        let a = answer_of(Reply::Sessions(vec![SessionInfo {
            id: SessionId {
                core: 0,
                slot: 4,
                generation: 2,
            },
            user: Some("alice".into()),
            source: "192.0.2.1".parse().expect("ip"),
            game: Some("nethack".into()),
            watching: false,
            idle_ms: 61_500,
            connected_ms: 3_600_000,
        }]));
        let rows = a.sessions.expect("rows");
        assert_eq!(rows[0].id, "0.4.2");
        assert_eq!((rows[0].idle_s, rows[0].connected_s), (61, 3600));
    }
}
