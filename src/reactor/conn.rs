//! One TCP connection on a data core: three small tasks around the sans-io SSH state machine
//! (reader, writer, timer) and the dispatch of its events to the terminals of its channels.
//!
//! The state machine lives in a `RefCell` that is only borrowed between awaits, never across
//! one. Socket reads go straight from glommio into a pooled buffer and into the SSH core;
//! writes hand the SSH core's sealed bytes to glommio without another copy.

use super::admission::{self, Admitted};
use super::clock::{now_ms, until};
use super::control::{Reply, Request, SshAttempt, SshOutcome};
use super::core::Core;
use super::lograte::Verdict;
use super::notify::Notify;
use super::terminal::{ChannelKey, Identity, Terminal};
use crate::metrics::{AuthMethod, Direction};
use crate::ssh::msg::DisconnectReason;
use crate::ssh::server::{AuthAttempt, ChannelId, CloseReason, Event, ServerConnection};
use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use tracing::Instrument;
use zeroize::Zeroizing;

/// Stop reading the socket while this much input waits for the SSH core (one maximum packet
/// plus a read): a client cannot make us buffer more by flooding during an auth decision.
const MAX_BUFFERED_INPUT: usize = 256 * 1024 + 8 * 1024;
/// How long a closing connection keeps reading (and discarding) what the peer still sends.
const CLOSE_LINGER: std::time::Duration = std::time::Duration::from_secs(2);
/// Hold game output back while this much is queued for the socket.
pub const MAX_TRANSMIT_BACKLOG: usize = 256 * 1024;

/// Why a blocked socket write was given up.
enum WriteCut {
    /// The connection closed meanwhile: try again, now with a deadline.
    Closed,
    /// The closing connection's deadline passed.
    TimedOut,
}

pub struct Conn {
    /// Core-unique id, for logs.
    pub id: u64,
    /// Log context of everything this connection does: id, peer, and user once known.
    pub span: tracing::Span,
    pub core: Rc<Core>,
    /// The socket's peer (a load balancer, when the PROXY protocol is on).
    pub peer: SocketAddr,
    /// The client: the peer, or who a trusted proxy's PROXY header names.
    client: Cell<SocketAddr>,
    /// Bytes of a PROXY protocol header still being received (`Some` until it is complete).
    proxy_header: RefCell<Option<Vec<u8>>>,
    /// Slot in the core's connection table.
    slot: Cell<usize>,
    pub ssh: RefCell<ServerConnection>,
    stream: RefCell<TcpStream>,
    /// Wakes the writer: there is something to send.
    writer_wake: Notify,
    /// Wakes the reader after input was held back.
    reader_wake: Notify,
    /// Wakes the timer: the deadline changed.
    timer_wake: Notify,
    /// Wakes a writer blocked on a full socket: the connection was closed, so its write now
    /// has a deadline.
    closing: Notify,
    /// The deadline the timer task sleeps until (to wake it only on a change).
    armed_deadline: Cell<Option<u64>>,
    /// Who is logged in at the SSH level, once known.
    pub identity: RefCell<Option<Identity>>,
    /// The terminal of each session channel.
    pub terminals: RefCell<BTreeMap<ChannelId, Terminal>>,
    /// Serial of the next terminal (see [`ChannelKey`]).
    next_serial: Cell<u64>,
    /// The connection is over (socket closing).
    closed: Cell<bool>,
    /// When it was marked over: the last bytes get `output_stall_seconds` to leave.
    closed_at: Cell<Option<std::time::Instant>>,
    /// Set when the writer has flushed and shut the socket.
    finished: Cell<bool>,
    /// When the socket was accepted (connection and handshake durations).
    accepted_at: std::time::Instant,
    /// Refused at once by a limit (counted as rejected, not as a connection that lived).
    rejected: Cell<bool>,
    /// The first key exchange completed.
    handshake_done: Cell<bool>,
    /// Its place in the per-source counts (None when it was refused).
    admitted: Cell<Option<Admitted>>,
    /// A login succeeded (reported to the counts once).
    logged_in: Cell<bool>,
    /// Failed authentication attempts, login grace run out or a protocol error: its source
    /// is penalized when it ends without a login.
    offence: Cell<bool>,
    /// Logged in with no session channel open since then (the no-channel idle limit).
    channelless_since: Cell<Option<std::time::Instant>>,
}

impl Conn {
    /// Take a freshly accepted socket and run it.
    pub fn start(core: Rc<Core>, stream: TcpStream) {
        let peer = stream
            .peer_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let _ = stream.set_nodelay(true);
        let count = core.shared.connections.fetch_add(1, Ordering::Relaxed) + 1;
        let ssh = ServerConnection::new(core.ssh_settings.clone(), now_ms());
        let id = ((core.id as u64) << 48) | core.conns.borrow().vacant_key() as u64;
        let span = tracing::info_span!(
            "conn",
            id,
            peer = %peer,
            client = tracing::field::Empty,
            user = tracing::field::Empty
        );
        let conn = Rc::new(Conn {
            id,
            span,
            core: core.clone(),
            peer,
            client: Cell::new(peer),
            proxy_header: RefCell::new(None),
            slot: Cell::new(0),
            ssh: RefCell::new(ssh),
            stream: RefCell::new(stream),
            writer_wake: Notify::default(),
            reader_wake: Notify::default(),
            timer_wake: Notify::default(),
            closing: Notify::default(),
            armed_deadline: Cell::new(None),
            identity: RefCell::new(None),
            terminals: RefCell::new(BTreeMap::new()),
            next_serial: Cell::new(0),
            closed: Cell::new(false),
            closed_at: Cell::new(None),
            finished: Cell::new(false),
            accepted_at: std::time::Instant::now(),
            rejected: Cell::new(false),
            handshake_done: Cell::new(false),
            admitted: Cell::new(None),
            logged_in: Cell::new(false),
            offence: Cell::new(false),
            channelless_since: Cell::new(None),
        });
        let slot = core.conns.borrow_mut().insert(Rc::downgrade(&conn));
        conn.slot.set(slot);
        tracing::debug!(parent: &conn.span, "connection accepted");
        if core.config().ssh.proxy_protocol_from.contains(peer.ip()) {
            // Who the client is comes first, in the PROXY header: admission waits for it.
            *conn.proxy_header.borrow_mut() = Some(Vec::new());
        } else {
            conn.admit(count);
        }
        conn.spawn(conn.clone().run_writer());
        conn.spawn(conn.clone().run_reader());
        conn.spawn(conn.clone().run_timer());
    }

    /// Admit the connection (limits, counts) or refuse it with a DISCONNECT saying why.
    fn admit(&self, open: usize) {
        match admission::admit(&self.core.shared, self.client_ip(), open, now_ms()) {
            Ok(a) => {
                self.admitted.set(Some(a));
                self.core.metrics.conn_accepted();
            }
            Err(r) => {
                self.core.metrics.conn_rejected(r.reason);
                self.rejected.set(true);
                tracing::debug!(parent: &self.span, reason = r.reason.as_str(), "connection refused");
                // Said in a DISCONNECT right after our version line: clients print it.
                self.ssh
                    .borrow_mut()
                    .disconnect(DisconnectReason::TooManyConnections, &r.message);
                self.close();
            }
        }
    }

    /// The client's address (the peer's, or the one a trusted PROXY header names).
    pub fn client_ip(&self) -> std::net::IpAddr {
        self.client.get().ip()
    }

    /// Bytes from the socket: the PROXY header first when one is expected, then the SSH core.
    fn take_input(&self, bytes: &[u8]) {
        let mut pending = self.proxy_header.borrow_mut();
        let Some(buf) = pending.as_mut() else {
            drop(pending);
            self.ssh.borrow_mut().handle_input(bytes, now_ms());
            return;
        };
        buf.extend_from_slice(bytes);
        match crate::proxy::parse(buf) {
            Ok(None) => {}
            Ok(Some(header)) => {
                let rest = buf.split_off(header.len.min(buf.len()));
                *pending = None;
                drop(pending);
                if let Some(client) = header.source {
                    self.client.set(client);
                    self.span.record("client", tracing::field::display(client));
                }
                let open = self.core.shared.connections.load(Ordering::Relaxed);
                self.admit(open);
                if !self.closed.get() {
                    self.ssh.borrow_mut().handle_input(&rest, now_ms());
                }
            }
            Err(e) => {
                *pending = None;
                drop(pending);
                tracing::info!(error = %e, "connection from a PROXY protocol source refused");
                self.core
                    .metrics
                    .conn_rejected(crate::metrics::RejectReason::ProxyHeader);
                self.rejected.set(true);
                self.close();
            }
        }
    }

    /// Run a task of this connection, inside its log context.
    pub fn spawn(&self, fut: impl std::future::Future<Output = ()> + 'static) {
        glommio::spawn_local(fut.instrument(self.span.clone())).detach();
    }

    /// Run a task that waits on another thread (blocking pool, control core) on the core's
    /// latency-sensitive queue.
    pub fn spawn_urgent(&self, fut: impl std::future::Future<Output = ()> + 'static) {
        let fut = fut.instrument(self.span.clone());
        match glommio::spawn_local_into(fut, self.core.urgent) {
            Ok(t) => {
                t.detach();
            }
            Err(e) => tracing::error!(error = %e, "cannot spawn on the urgent queue"),
        }
    }

    /// Whether this connection is logged in as, or plays as, the account `name`.
    pub fn belongs_to(&self, name: &str) -> bool {
        let ssh_user = matches!(
            self.identity.borrow().as_ref(),
            Some(Identity::User(u)) if u.name.eq_ignore_ascii_case(name)
        );
        ssh_user
            || self
                .terminals
                .borrow()
                .values()
                .any(|t| t.account().is_some_and(|a| a.eq_ignore_ascii_case(name)))
    }

    /// End the connection from the server side (shutdown, admin).
    pub fn shutdown(self: &Rc<Self>, message: &str) {
        let channels: Vec<ChannelId> = self.terminals.borrow().keys().copied().collect();
        for ch in channels {
            self.send_text(ch, &format!("\r\n\r\n{message}\r\n"));
        }
        self.ssh
            .borrow_mut()
            .disconnect(DisconnectReason::ByApplication, message);
        self.close();
    }

    /// Reader: socket → SSH core → events.
    async fn run_reader(self: Rc<Self>) {
        loop {
            if self.closed.get() {
                break;
            }
            let hold = {
                let ssh = self.ssh.borrow();
                // Input waits while the core holds enough, or while our answers to the peer
                // pile up unread: a peer that does not read gets nothing more read either.
                ssh.buffered_input() >= MAX_BUFFERED_INPUT || ssh.input_paused()
            };
            if hold {
                self.reader_wake.wait().await;
                continue;
            }
            let me = &self;
            let read = futures_lite::future::poll_fn(|cx| {
                let mut buf = me.core.pool.take();
                let mut stream = me.stream.borrow_mut();
                match Pin::new(&mut *stream).poll_read(cx, &mut buf) {
                    Poll::Ready(Ok(n)) => {
                        if n > 0 {
                            if let Some(bytes) = buf.get(..n) {
                                me.take_input(bytes);
                                me.core.metrics.bytes(Direction::In, n);
                            }
                        }
                        Poll::Ready(Ok(n))
                    }
                    other => other,
                }
            });
            let done = futures_lite::future::or(async { Some(read.await) }, async {
                me.reader_wake.wait().await;
                None
            })
            .await;
            match done {
                None => continue,
                Some(Ok(0)) | Some(Err(_)) => {
                    tracing::debug!("peer closed the socket");
                    self.close();
                    break;
                }
                Some(Ok(_)) => self.process_events(),
            }
        }
    }

    /// Writer: SSH core's sealed bytes → socket; closes the socket once the connection ends.
    async fn run_writer(self: Rc<Self>) {
        loop {
            let pending = !self.ssh.borrow().transmit().is_empty();
            if !pending {
                if self.closed.get() {
                    break;
                }
                self.writer_wake.wait().await;
                continue;
            }
            let was_paused = self.ssh.borrow().input_paused();
            let me = &self;
            let write = futures_lite::future::poll_fn(|cx| {
                let mut ssh = me.ssh.borrow_mut();
                let mut stream = me.stream.borrow_mut();
                match Pin::new(&mut *stream).poll_write(cx, ssh.transmit()) {
                    Poll::Ready(Ok(n)) => {
                        ssh.advance_transmit(n);
                        me.core.metrics.bytes(Direction::Out, n);
                        Poll::Ready(Ok(n))
                    }
                    other => other,
                }
            });
            // Once the connection is over, a peer that never reads (zero TCP window) must not
            // keep it, and its descriptor and buffers, forever: a write blocked when the
            // connection closes starts over with a deadline.
            let interrupt = async {
                match self.flush_deadline() {
                    None => {
                        self.closing.wait().await;
                        WriteCut::Closed
                    }
                    Some(left) => {
                        glommio::timer::sleep(left).await;
                        WriteCut::TimedOut
                    }
                }
            };
            let wrote =
                futures_lite::future::or(async { Ok(write.await) }, async { Err(interrupt.await) })
                    .await;
            let wrote = match wrote {
                Ok(w) => w,
                Err(WriteCut::Closed) => continue,
                Err(WriteCut::TimedOut) => {
                    tracing::debug!("closing connection could not flush in time; dropped");
                    break;
                }
            };
            match wrote {
                Ok(0) | Err(_) => {
                    self.close();
                    break;
                }
                Ok(_) => {
                    self.wake_game_output();
                    if was_paused && !self.ssh.borrow().input_paused() {
                        // Input held back while our output was over its cap can go on now.
                        self.reader_wake.signal();
                        self.process_events();
                    }
                }
            }
        }
        // Half-close (shutdown of our sending side), then drain.
        let _ = futures_lite::future::poll_fn(|cx| {
            Pin::new(&mut *self.stream.borrow_mut()).poll_close(cx)
        })
        .await;
        self.drain_until_peer_closes().await;
        self.finish();
    }

    /// Time left for a closed connection's last bytes, `None` while it is open.
    fn flush_deadline(&self) -> Option<std::time::Duration> {
        let closed_at = self.closed_at.get()?;
        let allowed =
            std::time::Duration::from_secs(self.core.config().limits.output_stall_seconds);
        Some(allowed.saturating_sub(closed_at.elapsed()))
    }

    /// Read and discard until the peer closes its side too, for at most [`CLOSE_LINGER`].
    /// Closing a socket with unread input makes the kernel answer with RST, and a client that
    /// receives RST may throw away what it had not read yet: the DISCONNECT saying why it was
    /// sent away ("server full", "too many authentication failures").
    async fn drain_until_peer_closes(&self) {
        let drain = async {
            loop {
                let read = futures_lite::future::poll_fn(|cx| {
                    let mut buf = self.core.pool.take();
                    Pin::new(&mut *self.stream.borrow_mut()).poll_read(cx, &mut buf)
                })
                .await;
                if !matches!(read, Ok(n) if n > 0) {
                    break;
                }
            }
        };
        futures_lite::future::or(drain, glommio::timer::sleep(CLOSE_LINGER)).await;
    }

    /// Timer: login grace and time-based re-key.
    async fn run_timer(self: Rc<Self>) {
        loop {
            if self.closed.get() {
                break;
            }
            let deadline = self.ssh.borrow().poll_timeout();
            self.armed_deadline.set(deadline);
            match deadline {
                None => self.timer_wake.wait().await,
                Some(d) => {
                    let fired = futures_lite::future::or(
                        async {
                            glommio::timer::sleep(until(d)).await;
                            true
                        },
                        async {
                            self.timer_wake.wait().await;
                            false
                        },
                    )
                    .await;
                    if fired {
                        self.ssh.borrow_mut().handle_timeout(now_ms());
                        self.process_events();
                    }
                }
            }
        }
    }

    /// Drain the SSH core's events and act on them.
    pub fn process_events(self: &Rc<Self>) {
        loop {
            let mut ssh = self.ssh.borrow_mut();
            let Some(ev) = ssh.poll_event() else { break };
            match ev {
                Event::KexComplete { kex, cipher, first } => {
                    if first {
                        self.handshake_done.set(true);
                        self.core
                            .metrics
                            .handshake_done(kex, self.accepted_at.elapsed());
                    } else {
                        self.core.metrics.kex_done(kex);
                    }
                    tracing::debug!(
                        kex = kex.name(),
                        cipher = cipher.name(),
                        first,
                        "key exchange done"
                    );
                }
                Event::AuthRequest { user, attempt } => {
                    let user = user.to_owned();
                    let attempt = match attempt {
                        AuthAttempt::None => SshAttempt::None,
                        AuthAttempt::Password(p) => SshAttempt::Password(Zeroizing::new(
                            String::from_utf8_lossy(p).into_owned(),
                        )),
                        AuthAttempt::PublicKey {
                            key_blob, signed, ..
                        } => SshAttempt::Key {
                            blob: key_blob.to_vec(),
                            signed,
                        },
                    };
                    drop(ssh);
                    self.spawn_urgent(self.clone().authenticate(user, attempt));
                }
                Event::ChannelOpen { channel } => {
                    drop(ssh);
                    let serial = self.next_serial.get();
                    self.next_serial.set(serial + 1);
                    self.channelless_since.set(None);
                    self.terminals
                        .borrow_mut()
                        .insert(channel, Terminal::new(serial));
                }
                Event::PtyRequest {
                    channel,
                    term,
                    size,
                } => {
                    let term = term.to_owned();
                    drop(ssh);
                    self.with_terminal(channel, |t, _| t.set_pty(term, size));
                }
                Event::Env {
                    channel,
                    name,
                    value,
                } => {
                    let (name, value) = (name.to_owned(), value.to_owned());
                    drop(ssh);
                    self.with_terminal(channel, |t, _| t.set_env(name, value));
                }
                Event::Shell { channel } => {
                    drop(ssh);
                    Terminal::start_shell(self, channel);
                }
                Event::Exec { channel, command } => {
                    let command = String::from_utf8_lossy(command).into_owned();
                    drop(ssh);
                    Terminal::start_exec(self, channel, command.trim());
                }
                Event::WindowChange { channel, size } => {
                    drop(ssh);
                    Terminal::resize(self, channel, size);
                }
                Event::Signal { channel, name } => {
                    let name = name.to_owned();
                    drop(ssh);
                    self.with_terminal(channel, |t, _| t.signal(&name));
                }
                Event::Data { channel, data } => {
                    let consumed_now = {
                        let mut terms = self.terminals.borrow_mut();
                        match terms.get_mut(&channel) {
                            Some(t) => t.input(data),
                            None => true,
                        }
                    };
                    if consumed_now {
                        let n = data.len();
                        ssh.channel_consumed(channel, n);
                    }
                    drop(ssh);
                    Terminal::after_input(self, channel);
                }
                Event::Eof { .. } => {}
                Event::ChannelClosed { channel } => {
                    drop(ssh);
                    let t = self.terminals.borrow_mut().remove(&channel);
                    if let Some(t) = t {
                        t.teardown(&self.core.metrics);
                    }
                    if self.terminals.borrow().is_empty() {
                        self.channelless_since.set(Some(std::time::Instant::now()));
                    }
                }
                Event::Closed { reason } => {
                    let peer_fault = matches!(&reason, CloseReason::Error(e) if e.is_peer_fault());
                    let grace_expired = matches!(
                        &reason,
                        CloseReason::Error(crate::ssh::Error::LoginGraceExpired)
                    );
                    if peer_fault || grace_expired {
                        self.offence.set(true);
                    }
                    if peer_fault {
                        match self.core.log_rate.check(self.client_ip(), std::time::Instant::now()) {
                            Verdict::Log => tracing::info!(?reason, "connection ended"),
                            Verdict::LogLast => tracing::info!(
                                ?reason,
                                "connection ended (further lines from this address suppressed for a minute)"
                            ),
                            Verdict::Suppress => {}
                        }
                    } else {
                        tracing::debug!(?reason, "connection ended");
                    }
                    drop(ssh);
                    self.close();
                }
            }
        }
        self.flush_terminals();
        self.after_activity();
    }

    /// Run `f` on a channel's terminal, if it exists.
    pub fn with_terminal<R>(
        self: &Rc<Self>,
        channel: ChannelId,
        f: impl FnOnce(&mut Terminal, &Rc<Self>) -> R,
    ) -> Option<R> {
        let mut terms = self.terminals.borrow_mut();
        terms.get_mut(&channel).map(|t| f(t, self))
    }

    /// Logged in, and no session channel open since this time.
    pub fn channelless_since(&self) -> Option<std::time::Instant> {
        self.channelless_since.get()
    }

    /// The earliest time since which a lobby on this connection has had no input.
    pub fn lobby_idle_since(&self) -> Option<std::time::Instant> {
        self.terminals
            .borrow()
            .values()
            .filter_map(Terminal::lobby_idle_since)
            .min()
    }

    /// Close every lobby idle since `cutoff` or earlier, telling it `message`.
    pub fn idle_out_lobbies(self: &Rc<Self>, cutoff: std::time::Instant, message: &str) {
        for t in self.terminals.borrow_mut().values_mut() {
            if t.lobby_idle_since().is_some_and(|since| since <= cutoff) {
                t.idle_out(message);
            }
        }
        self.flush_terminals();
        self.after_activity();
    }

    /// End the connection with a DISCONNECT saying why.
    pub fn disconnect(self: &Rc<Self>, reason: DisconnectReason, text: &str) {
        self.ssh.borrow_mut().disconnect(reason, text);
        self.process_events();
    }

    /// Run `f` on the terminal `key` names, if that very terminal is still open (not a newer
    /// one that reuses its channel id).
    pub fn with_terminal_at<R>(
        self: &Rc<Self>,
        key: ChannelKey,
        f: impl FnOnce(&mut Terminal, &Rc<Self>) -> R,
    ) -> Option<R> {
        let mut terms = self.terminals.borrow_mut();
        terms
            .get_mut(&key.id)
            .filter(|t| t.serial() == key.serial)
            .map(|t| f(t, self))
    }

    /// The key of the terminal now open on `channel`.
    pub fn key_of(&self, channel: ChannelId) -> Option<ChannelKey> {
        let serial = self.terminals.borrow().get(&channel)?.serial();
        Some(ChannelKey {
            id: channel,
            serial,
        })
    }

    /// Ask the control core about an SSH authentication attempt, then answer the SSH core.
    async fn authenticate(self: Rc<Self>, user: String, attempt: SshAttempt) {
        let (method, kind, is_attempt) = match &attempt {
            SshAttempt::None => ("none", AuthMethod::None, true),
            SshAttempt::Password(_) => ("password", AuthMethod::Password, true),
            // A key query is a question, not an attempt.
            SshAttempt::Key { signed, .. } => ("publickey", AuthMethod::PublicKey, *signed),
        };
        let outcome = match self
            .core
            .request(Request::SshAuth {
                user: user.clone(),
                attempt,
                source: self.client_ip(),
            })
            .await
        {
            Some(Reply::Ssh(o)) => o,
            _ => SshOutcome::Denied,
        };
        let accepted = !matches!(outcome, SshOutcome::Denied);
        tracing::debug!(method, accepted, "authentication decided");
        if is_attempt {
            self.core.metrics.auth_attempt(kind, accepted);
        }
        // A key query that is answered "yes" (PK_OK) logs nobody in: the connection is only
        // someone's once an attempt succeeds.
        if accepted && is_attempt {
            if !self.logged_in.replace(true) {
                // Failed attempts before a success are forgiven (a typo, then the password).
                self.offence.set(false);
                if let Some(a) = self.admitted.get() {
                    admission::logged_in(&self.core.shared, a);
                }
                if self.terminals.borrow().is_empty() {
                    self.channelless_since.set(Some(std::time::Instant::now()));
                }
                self.spawn(super::idle::watch(self.clone()));
            }
            if self.identity.borrow().is_none() {
                self.span
                    .record("user", crate::auth::printable(&user).as_str());
            }
            *self.identity.borrow_mut() = Some(match outcome {
                SshOutcome::User(info) => Identity::User(info),
                _ => Identity::Guest(user.clone()),
            });
        } else if !accepted && method != "none" {
            if is_attempt {
                self.offence.set(true);
            }
            match self
                .core
                .log_rate
                .check(self.client_ip(), std::time::Instant::now())
            {
                Verdict::Log => tracing::info!(
                    user = %crate::auth::printable(&user),
                    method,
                    "authentication failed"
                ),
                Verdict::LogLast => tracing::info!(
                    user = %crate::auth::printable(&user),
                    method,
                    "authentication failed (further lines from this address suppressed for a minute)"
                ),
                Verdict::Suppress => {}
            }
        }
        self.ssh.borrow_mut().auth_reply(accepted);
        self.process_events();
    }

    /// Send pending terminal output (lobby screens, messages) as the window allows.
    pub fn flush_terminals(self: &Rc<Self>) {
        let mut terms = self.terminals.borrow_mut();
        let mut ssh = self.ssh.borrow_mut();
        for (ch, t) in terms.iter_mut() {
            t.flush(&mut ssh, *ch);
        }
    }

    /// Queue text for a channel.
    pub fn send_text(self: &Rc<Self>, channel: ChannelId, text: &str) {
        self.with_terminal(channel, |t, _| t.queue_output(text.as_bytes()));
        self.flush_terminals();
        self.after_activity();
    }

    /// After anything that may have produced output or moved a window.
    pub fn after_activity(&self) {
        self.writer_wake.signal();
        if self.ssh.borrow().poll_timeout() != self.armed_deadline.get() {
            self.timer_wake.signal();
        }
        self.reader_wake.signal();
        self.wake_game_output();
        if self.ssh.borrow().is_closed() {
            self.close();
        }
    }

    fn wake_game_output(&self) {
        for t in self.terminals.borrow().values() {
            t.wake_output();
        }
    }

    /// Room for game output on `channel` (window and socket backlog).
    pub fn room(&self, channel: ChannelId) -> usize {
        let ssh = self.ssh.borrow();
        if ssh.transmit().len() >= MAX_TRANSMIT_BACKLOG {
            return 0;
        }
        ssh.send_window(channel)
    }

    /// Mark the connection over: hang up its games, let the writer flush and close.
    pub fn close(&self) {
        if self.closed.replace(true) {
            return;
        }
        self.closed_at.set(Some(std::time::Instant::now()));
        self.closing.signal();
        let terms = std::mem::take(&mut *self.terminals.borrow_mut());
        for (_, t) in terms {
            t.teardown(&self.core.metrics);
        }
        self.writer_wake.signal();
        self.reader_wake.signal();
        self.timer_wake.signal();
    }

    fn finish(&self) {
        if self.finished.replace(true) {
            return;
        }
        self.close();
        if !self.rejected.get() {
            if !self.handshake_done.get() {
                self.core.metrics.conn_failed();
            }
            self.core.metrics.conn_closed(self.accepted_at.elapsed());
        }
        if let Some(a) = self.admitted.take() {
            admission::ended(
                &self.core.shared,
                a,
                self.logged_in.get(),
                self.offence.get(),
                now_ms(),
            );
        }
        self.core.conns.borrow_mut().try_remove(self.slot.get());
        self.core.shared.connections.fetch_sub(1, Ordering::Relaxed);
        tracing::debug!(parent: &self.span, "connection closed");
    }

    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }
}
