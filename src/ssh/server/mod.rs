//! The server side of one SSH connection, as a sans-io state machine (RFC 4253/4252/4254).
//!
//! The reactor feeds it socket bytes and the current time and drains what it wants to send:
//!
//! ```text
//! conn.handle_input(&bytes, now);             // bytes from the socket
//! while let Some(ev) = conn.poll_event() {}   // decisions and data for the application
//! conn.transmit(); conn.advance_transmit(n);  // bytes for the socket, already sealed
//! conn.poll_timeout(); conn.handle_timeout(now);
//! ```
//!
//! Packets are processed lazily inside `poll_event`, one at a time, in the input buffer: an
//! event such as `Data` borrows the decrypted payload in place and the packet is dropped at
//! the next call. Decisions the core cannot make (is this password right?) pause processing
//! until the application answers with [`ServerConnection::auth_reply`].
//!
//! Time is a plain millisecond counter chosen by the caller, so tests run on virtual time.
//!
//! The work is split by concern: `kex_flow.rs` (KEXINIT, key exchange, NEWKEYS, re-keying,
//! strict KEX), `auth_flow.rs` (RFC 4252), `channels.rs` (RFC 4254).

mod auth_flow;
mod channels;
mod kex_flow;

pub use channels::ChannelId;

use super::cipher::CipherAlg;
use super::error::Error;
use super::hostkey::HostKey;
use super::kex::KexAlg;
use super::msg::{self, DisconnectReason, MsgType};
use super::pubkey::UserKeyAlg;
use super::transport::ident::{scan_client_ident, IdentScan};
use super::transport::packet::{PacketDecoder, PacketEncoder};
use std::collections::VecDeque;
use std::ops::Range;
use std::rc::Rc;

/// Milliseconds on a clock chosen by the caller (monotonic; origin irrelevant).
pub type Millis = u64;

/// Capacity an idle connection's output buffer is trimmed back to after a burst.
const IDLE_BUFFER_CAPACITY: usize = 16 * 1024;
/// Sent bytes at the front of the output buffer worth moving the rest down for.
const COMPACT_AFTER: usize = 64 * 1024;
/// Messages of unknown type a connection may send (each is answered with UNIMPLEMENTED).
/// Real clients send none; a flood of them is work and output for nothing.
const MAX_UNKNOWN_MESSAGES: u32 = 64;
/// SERVICE_REQUESTs a connection may send (paramiko sends one per authentication attempt).
const MAX_SERVICE_REQUESTS: u32 = 32;

/// What every connection of a server shares; built once per core from the configuration.
pub struct ServerSettings {
    /// Our ed25519 host key, which signs each exchange hash.
    pub host_key: HostKey,
    /// Key exchange methods in our order of preference.
    pub kex: Vec<KexAlg>,
    /// Ciphers in our order of preference.
    pub ciphers: Vec<CipherAlg>,
    /// Our identification string, without CR LF (e.g. `SSH-2.0-dungeongate_0.1`).
    pub ident: String,
    /// Text sent as SSH_MSG_USERAUTH_BANNER before the first authentication answer.
    pub auth_banner: Option<String>,
    /// Failed authentication attempts allowed before disconnecting.
    pub max_auth_tries: u32,
    /// Time from connect until authentication must be complete.
    pub login_grace_ms: Millis,
    /// Bytes (either direction) after which the server starts a new key exchange.
    pub rekey_bytes: u64,
    /// Time after which the server starts a new key exchange.
    pub rekey_interval_ms: Millis,
    /// Receive window we grant per channel; input beyond it waits for the application.
    pub channel_window: u32,
    /// Largest data packet we accept per channel.
    pub channel_max_packet: u32,
    /// Channels allowed per connection (OpenSSH's multiplexing opens several).
    pub max_channels: usize,
    /// Sealed and held output one connection may queue. Past it no more input is processed
    /// (a peer that does not read cannot make us answer without end), and staying past it for
    /// `output_stall_ms` ends the connection.
    pub max_queued_output: usize,
    /// How long output may stay over `max_queued_output`.
    pub output_stall_ms: Millis,
    /// Messages other than channel data and window adjustments processed per second, in the
    /// long run (a token bucket of `control_burst`): each may cost an answer and some CPU, and
    /// no client needs more; past it input waits (unread) for the bucket to refill.
    pub control_per_second: u32,
    /// Size of that bucket.
    pub control_burst: u32,
}

impl ServerSettings {
    /// Settings with the defaults the issue asks for; callers override fields from config.
    pub fn new(host_key: HostKey) -> Self {
        ServerSettings {
            host_key,
            kex: KexAlg::ALL.to_vec(),
            ciphers: CipherAlg::ALL.to_vec(),
            ident: format!("SSH-2.0-dungeongate_{}", env!("CARGO_PKG_VERSION")),
            auth_banner: None,
            max_auth_tries: 6,
            login_grace_ms: 120_000,
            rekey_bytes: 1 << 30,
            rekey_interval_ms: 3_600_000,
            channel_window: 256 * 1024,
            channel_max_packet: 32 * 1024,
            max_channels: 10,
            max_queued_output: 1 << 20,
            output_stall_ms: 60_000,
            control_per_second: 20,
            control_burst: 200,
        }
    }
}

/// Size of the client's terminal, from pty-req and window-change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TermSize {
    pub cols: u16,
    pub rows: u16,
    pub px_width: u16,
    pub px_height: u16,
}

/// What the client is trying, for the application to decide on.
#[derive(Clone, Copy)]
pub enum AuthAttempt<'a> {
    /// The `none` method: in this server, how guests get in.
    None,
    /// A password (raw bytes as sent; never log them).
    Password(&'a [u8]),
    /// A public key; `signed` means the core already verified the signature over this
    /// session, so the key was proven; unsigned is the "may I use this key?" query.
    PublicKey {
        algorithm: UserKeyAlg,
        key_blob: &'a [u8],
        signed: bool,
    },
}

impl std::fmt::Debug for AuthAttempt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthAttempt::None => f.write_str("None"),
            AuthAttempt::Password(_) => f.write_str("Password(<redacted>)"),
            AuthAttempt::PublicKey {
                algorithm, signed, ..
            } => write!(f, "PublicKey({algorithm:?}, signed: {signed})"),
        }
    }
}

/// Why the connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer sent SSH_MSG_DISCONNECT.
    PeerDisconnected { code: u32 },
    /// We ended it because of this error (a DISCONNECT was queued).
    Error(Error),
    /// The application asked us to disconnect.
    Application,
}

/// Something the application must know or decide.
#[derive(Debug)]
pub enum Event<'a> {
    /// A key exchange finished; `first` is the initial one (the handshake).
    KexComplete {
        kex: KexAlg,
        cipher: CipherAlg,
        first: bool,
    },
    /// Answer with [`ServerConnection::auth_reply`]; nothing else is processed until then.
    AuthRequest {
        user: &'a str,
        attempt: AuthAttempt<'a>,
    },
    /// A session channel was opened (already confirmed).
    ChannelOpen {
        channel: ChannelId,
    },
    PtyRequest {
        channel: ChannelId,
        term: &'a str,
        size: TermSize,
    },
    Shell {
        channel: ChannelId,
    },
    Exec {
        channel: ChannelId,
        command: &'a [u8],
    },
    /// An allowed environment variable (TERM, LANG, LC_*).
    Env {
        channel: ChannelId,
        name: &'a str,
        value: &'a str,
    },
    WindowChange {
        channel: ChannelId,
        size: TermSize,
    },
    Signal {
        channel: ChannelId,
        name: &'a str,
    },
    /// Input for a channel. Call [`ServerConnection::channel_consumed`] once it has been
    /// written on, so the client's window refills.
    Data {
        channel: ChannelId,
        data: &'a [u8],
    },
    Eof {
        channel: ChannelId,
    },
    /// The channel is gone (both sides sent CLOSE, or the client closed it).
    ChannelClosed {
        channel: ChannelId,
    },
    /// The connection is over; flush [`ServerConnection::transmit`] and close the socket.
    Closed {
        reason: CloseReason,
    },
}

/// An event found while processing a packet, with borrowed fields as ranges into the input
/// buffer (the buffer is borrowed mutably while processing; see `materialize`).
#[derive(Debug)]
enum RawEvent {
    Owned(Event<'static>),
    Auth {
        user: Range<usize>,
        attempt: RawAttempt,
    },
    PtyRequest {
        channel: ChannelId,
        term: Range<usize>,
        size: TermSize,
    },
    Exec {
        channel: ChannelId,
        command: Range<usize>,
    },
    Env {
        channel: ChannelId,
        name: Range<usize>,
        value: Range<usize>,
    },
    Signal {
        channel: ChannelId,
        name: Range<usize>,
    },
    Data {
        channel: ChannelId,
        data: Range<usize>,
    },
}

#[derive(Debug)]
enum RawAttempt {
    None,
    Password(Range<usize>),
    PublicKey {
        algorithm: UserKeyAlg,
        key_blob: Range<usize>,
        signed: bool,
    },
}

/// One SSH connection, server side.
pub struct ServerConnection {
    /// Shared, read-only settings of this server.
    settings: Rc<ServerSettings>,
    /// Latest time the caller told us.
    now: Millis,
    /// When the connection started, for the login grace time.
    started: Millis,

    /// Received bytes; `in_start..` are not consumed yet.
    inbuf: Vec<u8>,
    /// Start of unconsumed input in `inbuf`.
    in_start: usize,
    /// Wire length of the packet whose payload the last event borrowed; dropped on the next
    /// call, once that borrow has ended.
    lent: usize,
    /// The client's identification line once received (hashed into every exchange).
    client_ident: Option<Vec<u8>>,
    /// Packet framing and decryption of the client's packets.
    decoder: PacketDecoder,

    /// Sealed bytes for the socket; `out_start..` not written yet.
    outbuf: Vec<u8>,
    /// Start of unsent output in `outbuf`.
    out_start: usize,
    /// Packet framing and encryption of our packets.
    encoder: PacketEncoder,
    /// Non-KEX payloads held back while our KEXINIT is out and our NEWKEYS is not
    /// (RFC 4253 §7.1); sent right after NEWKEYS.
    held: VecDeque<Vec<u8>>,
    /// Bytes in `held`.
    held_bytes: usize,
    /// Since when queued output has been over `max_queued_output` (None: under it).
    over_cap_since: Option<Millis>,
    /// Messages of unknown type received (see [`MAX_UNKNOWN_MESSAGES`]).
    unknown_messages: u32,
    /// Control messages that may still be processed now (the token bucket).
    control_tokens: u32,
    /// When the bucket last gained a token.
    control_refilled: Millis,
    /// SERVICE_REQUESTs received (see [`MAX_SERVICE_REQUESTS`]).
    service_requests: u32,

    /// Key exchange progress and the per-connection KEX facts.
    kex: kex_flow::KexFlow,
    /// User authentication progress.
    auth: auth_flow::AuthFlow,
    /// Open channels.
    channels: channels::Channels,

    /// Events produced without a packet to borrow from (KEX done, closed…).
    owned_events: VecDeque<Event<'static>>,
    /// Set once the connection is over; no more input is processed.
    closed: bool,
}

impl ServerConnection {
    /// A new connection; our identification line and first KEXINIT are queued at once.
    pub fn new(settings: Rc<ServerSettings>, now: Millis) -> Self {
        let mut conn = ServerConnection {
            now,
            started: now,
            inbuf: Vec::new(),
            in_start: 0,
            lent: 0,
            client_ident: None,
            decoder: PacketDecoder::default(),
            outbuf: Vec::new(),
            out_start: 0,
            encoder: PacketEncoder::default(),
            held: VecDeque::new(),
            held_bytes: 0,
            over_cap_since: None,
            unknown_messages: 0,
            service_requests: 0,
            control_tokens: settings.control_burst,
            control_refilled: now,
            kex: kex_flow::KexFlow::new(now),
            auth: auth_flow::AuthFlow::default(),
            channels: channels::Channels::new(settings.max_channels),
            owned_events: VecDeque::new(),
            closed: false,
            settings,
        };
        conn.outbuf
            .extend_from_slice(conn.settings.ident.as_bytes());
        conn.outbuf.extend_from_slice(b"\r\n");
        conn.start_kex();
        conn
    }

    /// Bytes received from the socket.
    pub fn handle_input(&mut self, bytes: &[u8], now: Millis) {
        self.now = now;
        if self.closed {
            return;
        }
        self.release_lent();
        if self.in_start > 0 {
            self.inbuf.drain(..self.in_start);
            self.in_start = 0;
        }
        if self.inbuf.is_empty() && self.inbuf.capacity() > IDLE_BUFFER_CAPACITY {
            self.inbuf.shrink_to(IDLE_BUFFER_CAPACITY.max(bytes.len()));
        }
        self.inbuf.extend_from_slice(bytes);
    }

    /// The next event, processing buffered input as needed. `None` when more input (or an
    /// application answer) is needed.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event<'_>> {
        self.release_lent();
        loop {
            if let Some(ev) = self.owned_events.pop_front() {
                return Some(ev);
            }
            if self.closed || self.auth.is_waiting() {
                return None;
            }
            if self.output_over_cap() {
                // Answering more input would queue more output for a peer that is not reading.
                self.over_cap_since.get_or_insert(self.now);
                return None;
            }
            if !self.control_token_available() {
                // Too many control messages too fast: the rest waits for the bucket.
                return None;
            }
            match self.step() {
                Ok(Step::NeedInput) => {
                    self.maybe_rekey();
                    return self.owned_events.pop_front();
                }
                Ok(Step::Continue) => {}
                Ok(Step::Event(RawEvent::Owned(ev))) => return Some(ev),
                Ok(Step::Event(raw)) => return Some(self.materialize(raw)),
                Err(e) => self.fail(e),
            }
        }
    }

    /// Sealed bytes waiting for the socket.
    #[must_use]
    pub fn transmit(&self) -> &[u8] {
        self.outbuf.get(self.out_start..).unwrap_or_default()
    }

    /// `n` bytes of [`Self::transmit`] were written to the socket.
    pub fn advance_transmit(&mut self, n: usize) {
        self.out_start = self.out_start.saturating_add(n).min(self.outbuf.len());
        if self.out_start == self.outbuf.len() {
            self.outbuf.clear();
            self.out_start = 0;
            if self.outbuf.capacity() > IDLE_BUFFER_CAPACITY {
                // A burst is over: an idle connection keeps a small buffer only.
                self.outbuf.shrink_to(IDLE_BUFFER_CAPACITY);
            }
        } else if self.out_start >= COMPACT_AFTER && self.out_start * 2 >= self.outbuf.len() {
            // Sent output is dropped from the front once it is most of the buffer, so a peer
            // that reads slowly while we keep sending cannot grow it without bound.
            self.outbuf.drain(..self.out_start);
            self.out_start = 0;
        }
        if !self.output_over_cap() {
            self.over_cap_since = None;
        }
    }

    /// Output waiting for the peer: sealed bytes not yet written plus payloads held during a
    /// key exchange.
    #[must_use]
    pub fn queued_output(&self) -> usize {
        self.transmit().len().saturating_add(self.held_bytes)
    }

    /// Queued output is at or over `max_queued_output`: input processing is paused.
    #[must_use]
    pub fn output_over_cap(&self) -> bool {
        self.queued_output() >= self.settings.max_queued_output
    }

    /// Input processing is paused (output over its cap, or the control-message bucket is
    /// empty until [`Self::poll_timeout`]): the caller should not read more for now.
    #[must_use]
    pub fn input_paused(&self) -> bool {
        self.output_over_cap() || self.control_tokens == 0
    }

    /// Copy out and drop everything waiting for the socket (for tests and simple callers).
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.transmit());
        self.advance_transmit(usize::MAX);
    }

    /// The next deadline: end of login grace before authentication, the time-based re-key after.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Millis> {
        if self.closed {
            return None;
        }
        let stall = self
            .over_cap_since
            .map(|t| t.saturating_add(self.settings.output_stall_ms));
        let stall = match (stall, self.control_refill_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let other = if self.auth.is_authenticated() {
            self.kex.next_time_rekey(&self.settings)
        } else {
            Some(self.started.saturating_add(self.settings.login_grace_ms))
        };
        match (stall, other) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Time passed; act on expired deadlines.
    pub fn handle_timeout(&mut self, now: Millis) {
        self.now = now;
        if self.closed {
            return;
        }
        if !self.auth.is_authenticated()
            && now >= self.started.saturating_add(self.settings.login_grace_ms)
        {
            self.fail(Error::LoginGraceExpired);
            return;
        }
        if self.output_over_cap() {
            let since = *self.over_cap_since.get_or_insert(now);
            if now >= since.saturating_add(self.settings.output_stall_ms) {
                self.fail(Error::OutputStalled);
                return;
            }
        } else {
            self.over_cap_since = None;
        }
        self.maybe_rekey();
    }

    /// End the connection with a DISCONNECT carrying `reason` and `description`.
    pub fn disconnect(&mut self, reason: DisconnectReason, description: &str) {
        if self.closed {
            return;
        }
        self.send_now(|o| msg::encode_disconnect(o, reason, description));
        self.closed = true;
        self.owned_events.push_back(Event::Closed {
            reason: CloseReason::Application,
        });
    }

    /// The connection is over (after the `Closed` event); flush and close the socket.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The authenticated user name, once authentication succeeded.
    pub fn user(&self) -> Option<&str> {
        self.auth.user()
    }

    /// Session identifier (the first exchange hash), once the first KEX is done.
    pub fn session_id(&self) -> Option<&[u8]> {
        self.kex.session_id()
    }

    /// The client's identification line, once received.
    pub fn client_ident(&self) -> Option<&[u8]> {
        self.client_ident.as_deref()
    }

    /// Give the input and output buffers back while both are empty: an idle connection then
    /// holds no buffer (they grow again with the next packet). Call it when the connection
    /// has been quiet for a while, not per packet: a busy one keeps its buffers and
    /// allocates nothing.
    pub fn release_idle_buffers(&mut self) {
        if self.lent == 0 && self.in_start >= self.inbuf.len() {
            self.inbuf = Vec::new();
            self.in_start = 0;
        }
        if self.out_start >= self.outbuf.len() {
            self.outbuf = Vec::new();
            self.out_start = 0;
        }
    }

    /// Capacity of the input and output buffers (what an idle connection holds).
    #[must_use]
    pub fn buffer_capacity(&self) -> usize {
        self.inbuf.capacity() + self.outbuf.capacity()
    }

    /// Bytes still in the input buffer (for tests and flow control).
    pub fn buffered_input(&self) -> usize {
        self.inbuf.len() - self.in_start
    }

    // ----- internals shared by the flows -----

    /// Drop the packet lent to the previous event.
    fn release_lent(&mut self) {
        self.in_start += std::mem::take(&mut self.lent);
    }

    /// Process the identification line or one packet.
    fn step(&mut self) -> Result<Step, Error> {
        if self.client_ident.is_none() {
            let input = self.inbuf.get(self.in_start..).unwrap_or_default();
            return match scan_client_ident(input)? {
                IdentScan::Incomplete => Ok(Step::NeedInput),
                IdentScan::Complete { line_len, consumed } => {
                    self.client_ident = input.get(..line_len).map(<[u8]>::to_vec);
                    self.in_start += consumed;
                    Ok(Step::Continue)
                }
            };
        }
        // Take the buffer out so the handlers can borrow the payload while mutating `self`.
        let mut inbuf = std::mem::take(&mut self.inbuf);
        let result = self.step_packet(&mut inbuf);
        self.inbuf = inbuf;
        result
    }

    fn step_packet(&mut self, inbuf: &mut [u8]) -> Result<Step, Error> {
        let base = self.in_start;
        let window = inbuf.get_mut(base..).unwrap_or_default();
        let Some(packet) = self.decoder.decode(window)? else {
            return Ok(Step::NeedInput);
        };
        let start = base + packet.payload.start;
        let end = base + packet.payload.end;
        let payload = inbuf.get(start..end).unwrap_or_default();
        let Some(&msg_num) = payload.first() else {
            return Err(Error::Protocol("empty payload"));
        };
        let ctx = PacketCtx {
            seq: packet.seq,
            base_ptr: inbuf.as_ptr() as usize,
        };
        if !matches!(msg_num, 93..=95) {
            // Anything but channel data and window adjustments takes a token.
            self.control_tokens = self.control_tokens.saturating_sub(1);
        }
        let outcome = self.dispatch(msg_num, payload, &ctx);
        // The payload stays in place while an event borrows it; otherwise drop it now.
        match &outcome {
            Ok(Some(RawEvent::Owned(_))) | Ok(None) | Err(_) => {
                self.in_start += packet.wire_len;
            }
            Ok(Some(_)) => self.lent = packet.wire_len,
        }
        outcome.map(|e| e.map_or(Step::Continue, Step::Event))
    }

    /// Route one decrypted message to its flow.
    fn dispatch(
        &mut self,
        n: u8,
        payload: &[u8],
        ctx: &PacketCtx,
    ) -> Result<Option<RawEvent>, Error> {
        self.kex.check_allowed(n)?;
        if MsgType::is_transport_generic(n) {
            return self.handle_generic(n, payload, ctx);
        }
        if MsgType::is_kex(n) {
            return self.handle_kex_message(n, payload);
        }
        match n {
            50..=79 => self.handle_userauth(n, payload, ctx),
            80..=127 => {
                if !self.auth.is_authenticated() {
                    return Err(Error::Unexpected {
                        expected: "authentication",
                        got: "a connection-protocol message",
                    });
                }
                self.handle_connection(n, payload, ctx)
            }
            _ => self.unimplemented(ctx.seq).map(|()| None),
        }
    }

    /// Messages 1–19 (RFC 4253 §11, RFC 8308, service request).
    fn handle_generic(
        &mut self,
        n: u8,
        payload: &[u8],
        ctx: &PacketCtx,
    ) -> Result<Option<RawEvent>, Error> {
        match MsgType::from_u8(n) {
            Some(MsgType::Disconnect) => {
                let (code, _) = msg::decode_disconnect(payload)?;
                self.closed = true;
                Ok(Some(RawEvent::Owned(Event::Closed {
                    reason: CloseReason::PeerDisconnected { code },
                })))
            }
            Some(MsgType::Ignore) | Some(MsgType::Debug) | Some(MsgType::Unimplemented) => Ok(None),
            Some(MsgType::ExtInfo) => Ok(None),
            Some(MsgType::ServiceRequest) => {
                let name = msg::decode_service_request(payload)?;
                if !self.kex.first_done() {
                    return Err(Error::Unexpected {
                        expected: "key exchange",
                        got: "SSH_MSG_SERVICE_REQUEST",
                    });
                }
                // Repeats are answered too: paramiko asks again before every attempt. Not
                // forever: each costs an answer, and nothing needs more than a few.
                if name != b"ssh-userauth" {
                    return Err(Error::ServiceNotAvailable);
                }
                self.service_requests = self.service_requests.saturating_add(1);
                if self.service_requests > MAX_SERVICE_REQUESTS {
                    return Err(Error::Protocol("too many service requests"));
                }
                self.auth.accept_service();
                self.send(|o| msg::encode_service_accept(o, b"ssh-userauth"));
                Ok(None)
            }
            _ => self.unimplemented(ctx.seq).map(|()| None),
        }
    }

    /// Turn a raw event into one borrowing the input buffer.
    fn materialize(&self, raw: RawEvent) -> Event<'_> {
        let bytes = |r: Range<usize>| self.inbuf.get(r).unwrap_or_default();
        // Fields were checked to be UTF-8 when the packet was processed.
        let text = |r: Range<usize>| std::str::from_utf8(bytes(r)).unwrap_or_default();
        match raw {
            RawEvent::Owned(ev) => ev,
            RawEvent::Auth { user, attempt } => Event::AuthRequest {
                user: text(user),
                attempt: match attempt {
                    RawAttempt::None => AuthAttempt::None,
                    RawAttempt::Password(p) => AuthAttempt::Password(bytes(p)),
                    RawAttempt::PublicKey {
                        algorithm,
                        key_blob,
                        signed,
                    } => AuthAttempt::PublicKey {
                        algorithm,
                        key_blob: bytes(key_blob),
                        signed,
                    },
                },
            },
            RawEvent::PtyRequest {
                channel,
                term,
                size,
            } => Event::PtyRequest {
                channel,
                term: text(term),
                size,
            },
            RawEvent::Exec { channel, command } => Event::Exec {
                channel,
                command: bytes(command),
            },
            RawEvent::Env {
                channel,
                name,
                value,
            } => Event::Env {
                channel,
                name: text(name),
                value: text(value),
            },
            RawEvent::Signal { channel, name } => Event::Signal {
                channel,
                name: text(name),
            },
            RawEvent::Data { channel, data } => Event::Data {
                channel,
                data: bytes(data),
            },
        }
    }

    /// Queue a payload for the peer: sealed now, or held while our key exchange is running.
    fn send(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        if self.kex.output_held() {
            let mut payload = Vec::new();
            write(&mut payload);
            self.held_bytes = self.held_bytes.saturating_add(payload.len());
            self.held.push_back(payload);
        } else {
            self.send_now(write);
        }
    }

    /// Seal a payload right away (KEX messages, DISCONNECT, and everything outside a KEX).
    fn send_now(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        self.encoder.encode(&mut self.outbuf, write);
    }

    /// Send what was held during the key exchange.
    fn flush_held(&mut self) {
        while let Some(p) = self.held.pop_front() {
            self.encoder
                .encode(&mut self.outbuf, |o| o.extend_from_slice(&p));
        }
        self.held_bytes = 0;
    }

    /// Refill the control bucket for the time passed; whether a token is there.
    fn control_token_available(&mut self) -> bool {
        let rate = u64::from(self.settings.control_per_second.max(1));
        let per_token = (1000 / rate).max(1);
        let earned = self.now.saturating_sub(self.control_refilled) / per_token;
        if earned > 0 {
            let burst = self.settings.control_burst.max(1);
            let earned = u32::try_from(earned).unwrap_or(u32::MAX);
            self.control_tokens = self.control_tokens.saturating_add(earned).min(burst);
            self.control_refilled = self
                .control_refilled
                .saturating_add(u64::from(earned).saturating_mul(per_token));
            if self.control_tokens == burst {
                self.control_refilled = self.now;
            }
        }
        self.control_tokens > 0
    }

    /// When processing resumes, while the bucket is empty: once a quarter second's worth of
    /// tokens has come back (one wake-up per connection and quarter second, not one per
    /// message, however many connections are being held back).
    fn control_refill_deadline(&self) -> Option<Millis> {
        (self.control_tokens == 0).then(|| {
            let rate = u64::from(self.settings.control_per_second.max(1));
            let per_token = (1000 / rate).max(1);
            let batch = (rate / 4).clamp(1, u64::from(self.settings.control_burst.max(1)));
            self.control_refilled
                .saturating_add(per_token.saturating_mul(batch))
        })
    }

    /// Answer a message of unknown type, up to [`MAX_UNKNOWN_MESSAGES`].
    fn unimplemented(&mut self, seq: u32) -> Result<(), Error> {
        self.unknown_messages = self.unknown_messages.saturating_add(1);
        if self.unknown_messages > MAX_UNKNOWN_MESSAGES {
            return Err(Error::Protocol("too many messages of unknown type"));
        }
        self.send(|o| msg::encode_unimplemented(o, seq));
        Ok(())
    }

    /// End the connection because of `e`.
    fn fail(&mut self, e: Error) {
        if self.closed {
            return;
        }
        if matches!(e, Error::BadIdentification(_)) && self.client_ident.is_none() {
            // No binary protocol yet: say it in plain text, as OpenSSH does.
            self.outbuf
                .extend_from_slice(b"Invalid SSH identification string.\r\n");
        } else {
            let reason = e.disconnect_reason();
            let text = e.to_string();
            self.send_now(|o| msg::encode_disconnect(o, reason, &text));
        }
        self.closed = true;
        self.owned_events.push_back(Event::Closed {
            reason: CloseReason::Error(e),
        });
    }
}

/// Facts about the packet being processed.
struct PacketCtx {
    /// Its sequence number (for UNIMPLEMENTED and strict KEX).
    seq: u32,
    /// Address of the input buffer, to turn borrowed fields into ranges.
    base_ptr: usize,
}

impl PacketCtx {
    /// The position of `field` (a sub-slice of the payload) within the input buffer.
    fn range(&self, field: &[u8]) -> Range<usize> {
        let start = (field.as_ptr() as usize).saturating_sub(self.base_ptr);
        start..start + field.len()
    }
}

/// Outcome of one processing step.
enum Step {
    NeedInput,
    Continue,
    Event(RawEvent),
}

#[cfg(test)]
mod tests;
