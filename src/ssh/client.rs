//! A small SSH client of our own, sans-io like the server: for in-memory client/server tests
//! with virtual time, for fuzz targets that need a valid session to mutate, and for benches.
//! (The load harness deliberately uses russh instead, so our bugs cannot hide behind
//! themselves.)
//!
//! It walks one fixed path: identification, KEXINIT, one key exchange, NEWKEYS, the userauth
//! service, one authentication method, one session channel with a PTY and a shell. Tests can
//! also inject raw payloads to break the protocol on purpose.
//!
//! [`Client::pump`] and [`serve`] connect it to a [`ServerConnection`] in memory: the one
//! client/server pump of the unit tests, the integration tests and the benches.

use super::cipher::{CipherAlg, OpeningKey, SealingKey};
use super::error::Error;
use super::kex::{self, ClientKex, ExchangeHashInput, KexAlg};
use super::msg::{self, KexInit, MsgType};
use super::pubkey::{self, UserKeyAlg};
use super::server::{ChannelId, Event, Millis, ServerConnection};
use super::transport::packet::{PacketDecoder, PacketEncoder};
use super::wire;
use ring::signature::{Ed25519KeyPair, KeyPair};

/// How the client authenticates.
#[derive(Clone)]
pub enum ClientAuth {
    None,
    Password(String),
    /// An ed25519 key from its 32-byte seed; `query_first` sends the PK_OK query before
    /// signing, as OpenSSH does.
    Ed25519 {
        seed: [u8; 32],
        query_first: bool,
    },
}

/// What the client does.
#[derive(Clone)]
pub struct ClientConfig {
    pub user: String,
    pub auth: ClientAuth,
    pub kex: KexAlg,
    pub cipher: CipherAlg,
    /// Announce `kex-strict-c-v00@openssh.com`.
    pub strict_kex: bool,
    /// Announce `ext-info-c`.
    pub ext_info: bool,
    /// Identification line (without CR LF).
    pub ident: String,
    /// Open a session with a PTY and a shell once authenticated.
    pub open_session: bool,
    /// Exec this command instead of asking for a shell.
    pub command: Option<String>,
    /// Key exchange names to advertise, in order (empty: just `kex`). `kex` must be the one
    /// that negotiation picks, since it is the only one this client computes.
    pub kex_names: Vec<&'static str>,
    /// Host key algorithms to advertise, in order.
    pub host_key_names: Vec<&'static str>,
    /// Send a guessed key-exchange packet right after the first KEXINIT (RFC 4253 §7).
    pub guess: Option<Guess>,
}

/// The guessed packet a client sends with `first_kex_packet_follows`.
#[derive(Clone, Debug)]
pub enum Guess {
    /// KEX_ECDH_INIT for `kex`: reused when the guess turns out right, replaced when wrong.
    EcdhInit,
    /// This payload instead, followed by a real KEX_ECDH_INIT once the server's KEXINIT is in.
    Raw(Vec<u8>),
}

impl ClientConfig {
    pub fn new(user: &str, auth: ClientAuth) -> Self {
        ClientConfig {
            user: user.to_owned(),
            auth,
            kex: KexAlg::Curve25519Sha256,
            cipher: CipherAlg::ChaCha20Poly1305,
            strict_kex: true,
            ext_info: true,
            ident: "SSH-2.0-dungeongate_testclient".to_owned(),
            open_session: true,
            command: None,
            kex_names: Vec::new(),
            host_key_names: vec!["ssh-ed25519"],
            guess: None,
        }
    }
}

/// Things the client saw, in order, for tests to assert on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    KexDone,
    ExtInfo,
    Banner(String),
    AuthSuccess,
    AuthFailure(String),
    PkOk,
    ChannelOpened,
    ChannelOpenFailure(u32),
    RequestSuccess,
    RequestFailure,
    GlobalReply,
    Eof,
    Closed,
    ExitStatus(u32),
    Disconnected(u32),
    Unimplemented,
}

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    Ident,
    KexInit,
    KexReply,
    NewKeys,
    ServiceAccept,
    Auth,
    ChannelConfirm,
    Open,
    Done,
}

/// The client.
pub struct Client {
    cfg: ClientConfig,
    phase: Phase,
    /// Unprocessed bytes from the server.
    inbuf: Vec<u8>,
    /// Bytes for the server.
    outbuf: Vec<u8>,
    decoder: PacketDecoder,
    encoder: PacketEncoder,
    server_ident: Vec<u8>,
    our_kexinit: Vec<u8>,
    server_kexinit: Vec<u8>,
    kex: Option<(ClientKex, Vec<u8>)>,
    /// We sent a KEXINIT for the exchange in progress.
    kexinit_sent: bool,
    session_id: Option<Vec<u8>>,
    pending_opening: Option<OpeningKey>,
    /// Server's channel number for our session.
    server_channel: Option<u32>,
    /// What we may still send on the channel.
    pub send_window: u32,
    /// Channel data received from the server.
    pub received: Vec<u8>,
    /// Everything else seen.
    pub events: Vec<ClientEvent>,
    /// The server's host key blob, as presented in the KEX reply.
    pub host_key: Vec<u8>,
    /// The description of the server's DISCONNECT, once one arrived.
    pub disconnect_text: Option<String>,
}

impl Client {
    pub fn new(cfg: ClientConfig) -> Self {
        let mut c = Client {
            phase: Phase::Ident,
            inbuf: Vec::new(),
            outbuf: Vec::new(),
            decoder: PacketDecoder::default(),
            encoder: PacketEncoder::default(),
            server_ident: Vec::new(),
            our_kexinit: Vec::new(),
            server_kexinit: Vec::new(),
            kex: None,
            kexinit_sent: false,
            session_id: None,
            pending_opening: None,
            server_channel: None,
            send_window: 0,
            received: Vec::new(),
            events: Vec::new(),
            host_key: Vec::new(),
            disconnect_text: None,
            cfg,
        };
        c.outbuf.extend_from_slice(c.cfg.ident.as_bytes());
        c.outbuf.extend_from_slice(b"\r\n");
        c
    }

    /// Queue a KEXINIT (the client's first, or a client-initiated re-key).
    pub fn send_kexinit(&mut self) {
        let mut kex_names = if self.cfg.kex_names.is_empty() {
            vec![self.cfg.kex.name()]
        } else {
            self.cfg.kex_names.clone()
        };
        let first = self.session_id.is_none();
        if first {
            if self.cfg.strict_kex {
                kex_names.push("kex-strict-c-v00@openssh.com");
            }
            if self.cfg.ext_info {
                kex_names.push("ext-info-c");
            }
        }
        let mut p = Vec::new();
        msg::encode_kexinit(
            &mut p,
            &[1; 16],
            &msg::KexInitLists {
                kex: &kex_names,
                host_key: &self.cfg.host_key_names,
                ciphers: &[self.cfg.cipher.name()],
                macs: &["hmac-sha2-256-etm@openssh.com"],
                compression: &["none"],
            },
        );
        let guess = if first { self.cfg.guess.clone() } else { None };
        if guess.is_some() {
            // first_kex_packet_follows is the last field before the reserved u32.
            let flag = p.len().saturating_sub(5);
            if let Some(b) = p.get_mut(flag) {
                *b = 1;
            }
        }
        self.our_kexinit = p.clone();
        self.kexinit_sent = true;
        self.encoder
            .encode(&mut self.outbuf, |o| o.extend_from_slice(&p));
        match guess {
            Some(Guess::EcdhInit) => {
                if let Ok((state, q_c)) = ClientKex::new(self.cfg.kex) {
                    self.send(|o| msg::encode_kex_ecdh_init(o, &q_c));
                    self.kex = Some((state, q_c));
                }
            }
            Some(Guess::Raw(payload)) => self.send(|o| o.extend_from_slice(&payload)),
            None => {}
        }
        if self.phase == Phase::Done || self.phase == Phase::Open {
            self.phase = Phase::KexInit;
        }
    }

    /// Bytes from the server; processes every complete packet.
    pub fn handle_input(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.inbuf.extend_from_slice(bytes);
        if self.phase == Phase::Ident {
            let Some(lf) = self.inbuf.iter().position(|&b| b == b'\n') else {
                return Ok(());
            };
            let line: Vec<u8> = self.inbuf.drain(..=lf).collect();
            self.server_ident = line.strip_suffix(b"\r\n").unwrap_or(&line).to_vec();
            self.phase = Phase::KexInit;
            self.send_kexinit();
        }
        loop {
            let mut buf = std::mem::take(&mut self.inbuf);
            let decoded = self.decoder.decode(&mut buf);
            let packet = match decoded {
                Ok(Some(p)) => p,
                Ok(None) => {
                    self.inbuf = buf;
                    return Ok(());
                }
                Err(e) => {
                    self.inbuf = buf;
                    return Err(e);
                }
            };
            let payload = buf.get(packet.payload.clone()).unwrap_or_default().to_vec();
            buf.drain(..packet.wire_len);
            self.inbuf = buf;
            self.handle_packet(&payload)?;
        }
    }

    /// Bytes for the server.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.outbuf);
    }

    /// Moves bytes between this client and a server until a whole round moves nothing, for at
    /// most `rounds` rounds; returns whether it settled. Each round hands the client's bytes to
    /// `server`, the server's half of the round (usually [`serve`], which benches time), which
    /// puts the server's answer in the buffer it is given and says whether the server had
    /// events; the answer is then fed to the client.
    pub fn pump(
        &mut self,
        rounds: usize,
        mut server: impl FnMut(&[u8], &mut Vec<u8>) -> Result<bool, Error>,
    ) -> Result<bool, Error> {
        for _ in 0..rounds {
            let mut to_server = Vec::new();
            self.poll_transmit(&mut to_server);
            let mut to_client = Vec::new();
            let events = server(&to_server, &mut to_client)?;
            if !to_client.is_empty() {
                self.handle_input(&to_client)?;
            }
            if to_server.is_empty() && !events && to_client.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Send data on the session channel (respecting the window); returns bytes queued.
    pub fn send_data(&mut self, data: &[u8]) -> usize {
        let Some(ch) = self.server_channel else {
            return 0;
        };
        let n = data.len().min(self.send_window as usize).min(32 * 1024);
        let chunk = data.get(..n).unwrap_or_default();
        self.send_window -= n as u32;
        self.encoder.encode(&mut self.outbuf, |o| {
            msg::encode_channel_data_header(o, ch, n as u32);
            o.extend_from_slice(chunk);
        });
        n
    }

    /// Send a window-change request.
    pub fn window_change(&mut self, cols: u32, rows: u32) {
        let Some(ch) = self.server_channel else {
            return;
        };
        self.encoder.encode(&mut self.outbuf, |o| {
            msg::encode_channel_request_header(o, ch, "window-change", false);
            for v in [cols, rows, 0, 0] {
                wire::put_u32(o, v);
            }
        });
    }

    /// Return `n` consumed bytes to the server's window.
    pub fn adjust_window(&mut self, n: u32) {
        if let Some(ch) = self.server_channel {
            self.encoder
                .encode(&mut self.outbuf, |o| msg::encode_window_adjust(o, ch, n));
        }
    }

    /// Send an arbitrary payload (to break the protocol on purpose).
    pub fn send_raw_payload(&mut self, payload: &[u8]) {
        self.encoder
            .encode(&mut self.outbuf, |o| o.extend_from_slice(payload));
    }

    /// The server's channel number, once the session is open.
    pub fn channel(&self) -> Option<u32> {
        self.server_channel
    }

    /// The session id, once the first KEX is done.
    pub fn session_id(&self) -> Option<&[u8]> {
        self.session_id.as_deref()
    }

    /// Public key blob of the configured ed25519 key.
    pub fn key_blob(seed: &[u8; 32]) -> Vec<u8> {
        let mut blob = Vec::new();
        if let Ok(kp) = Ed25519KeyPair::from_seed_unchecked(seed) {
            wire::put_string(&mut blob, b"ssh-ed25519");
            wire::put_string(&mut blob, kp.public_key().as_ref());
        }
        blob
    }

    /// A signed publickey request for `user`, signed by `seed`'s key over this session.
    pub fn signed_key_request(&self, user: &str, seed: &[u8; 32]) -> Vec<u8> {
        let mut body = Self::publickey_request(user, seed, true);
        let mut signed = Vec::new();
        wire::put_string(&mut signed, self.session_id.as_deref().unwrap_or_default());
        signed.extend_from_slice(&body);
        let mut sig_blob = Vec::new();
        if let Ok(kp) = Ed25519KeyPair::from_seed_unchecked(seed) {
            wire::put_string(&mut sig_blob, b"ssh-ed25519");
            wire::put_string(&mut sig_blob, kp.sign(&signed).as_ref());
        }
        wire::put_string(&mut body, &sig_blob);
        body
    }

    /// A publickey query (no signature) for `user` with `seed`'s key.
    pub fn key_query(user: &str, seed: &[u8; 32]) -> Vec<u8> {
        Self::publickey_request(user, seed, false)
    }

    /// A publickey request for `user` with `seed`'s key, up to (not including) the signature
    /// that follows when `signed`.
    fn publickey_request(user: &str, seed: &[u8; 32], signed: bool) -> Vec<u8> {
        let mut body = Vec::new();
        msg::encode_userauth_request_publickey(
            &mut body,
            user.as_bytes(),
            b"ssh-connection",
            b"ssh-ed25519",
            &Self::key_blob(seed),
            signed,
        );
        body
    }

    fn send(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        self.encoder.encode(&mut self.outbuf, write);
    }

    fn handle_packet(&mut self, payload: &[u8]) -> Result<(), Error> {
        let n = payload.first().copied().unwrap_or(0);
        match MsgType::from_u8(n) {
            Some(MsgType::KexInit) => {
                let theirs = KexInit::decode(payload)?;
                if !self.kexinit_sent {
                    self.send_kexinit();
                }
                self.server_kexinit = payload.to_vec();
                // A guessed ECDH_INIT stands only when both sides' first choices agree.
                let ours = KexInit::decode(&self.our_kexinit)?;
                let guessed_right = ours.kex.iter().next() == theirs.kex.iter().next()
                    && ours.host_key.iter().next() == theirs.host_key.iter().next();
                let guess_stands = guessed_right
                    && matches!(self.cfg.guess, Some(Guess::EcdhInit))
                    && self.kex.is_some();
                if !guess_stands {
                    let (state, q_c) =
                        ClientKex::new(self.cfg.kex).map_err(|_| Error::KexFailed("client kex"))?;
                    self.send(|o| msg::encode_kex_ecdh_init(o, &q_c));
                    self.kex = Some((state, q_c));
                }
                self.phase = Phase::KexReply;
            }
            Some(MsgType::KexEcdhReply) => self.on_kex_reply(payload)?,
            Some(MsgType::NewKeys) => {
                let key = self
                    .pending_opening
                    .take()
                    .ok_or(Error::Protocol("NEWKEYS before reply"))?;
                self.decoder.install_keys(key, self.cfg.strict_kex);
                self.kexinit_sent = false;
                self.events.push(ClientEvent::KexDone);
                if self.phase == Phase::NewKeys {
                    self.phase = Phase::ServiceAccept;
                    self.send(|o| msg::encode_service_request(o, "ssh-userauth"));
                } else {
                    self.phase = Phase::Open;
                }
            }
            Some(MsgType::ExtInfo) => self.events.push(ClientEvent::ExtInfo),
            Some(MsgType::ServiceAccept) => {
                self.phase = Phase::Auth;
                self.send_auth_request();
            }
            Some(MsgType::UserauthBanner) => {
                let mut r = wire::Reader::new(payload.get(1..).unwrap_or_default());
                let text = String::from_utf8_lossy(r.string()?).into_owned();
                self.events.push(ClientEvent::Banner(text));
            }
            Some(MsgType::UserauthFailure) => {
                let (methods, _) = msg::decode_userauth_failure(payload)?;
                self.events
                    .push(ClientEvent::AuthFailure(methods.as_str().to_owned()));
            }
            Some(MsgType::UserauthPkOk) => {
                self.events.push(ClientEvent::PkOk);
                if let ClientAuth::Ed25519 { seed, .. } = self.cfg.auth.clone() {
                    let req = self.signed_key_request(&self.cfg.user.clone(), &seed);
                    self.send(|o| o.extend_from_slice(&req));
                }
            }
            Some(MsgType::UserauthSuccess) => {
                self.events.push(ClientEvent::AuthSuccess);
                if self.cfg.open_session {
                    self.phase = Phase::ChannelConfirm;
                    self.send(|o| msg::encode_channel_open_session(o, 0, 1 << 20, 32 * 1024));
                } else {
                    self.phase = Phase::Done;
                }
            }
            Some(MsgType::ChannelOpenConfirmation) => {
                let c = msg::decode_channel_open_confirmation(payload)?;
                self.server_channel = Some(c.sender);
                self.send_window = c.window;
                self.events.push(ClientEvent::ChannelOpened);
                self.phase = Phase::Open;
                self.send(|o| {
                    msg::encode_channel_request_header(o, c.sender, "pty-req", true);
                    wire::put_string(o, b"xterm-256color");
                    for v in [80, 24, 0, 0] {
                        wire::put_u32(o, v);
                    }
                    wire::put_string(o, &[0]);
                });
                match self.cfg.command.clone() {
                    Some(cmd) => self.send(|o| {
                        msg::encode_channel_request_header(o, c.sender, "exec", true);
                        wire::put_string(o, cmd.as_bytes());
                    }),
                    None => self
                        .send(|o| msg::encode_channel_request_header(o, c.sender, "shell", true)),
                }
            }
            Some(MsgType::ChannelOpenFailure) => {
                let mut r = wire::Reader::new(payload.get(1..).unwrap_or_default());
                let _recipient = r.u32()?;
                self.events.push(ClientEvent::ChannelOpenFailure(r.u32()?));
            }
            Some(MsgType::ChannelSuccess) => self.events.push(ClientEvent::RequestSuccess),
            Some(MsgType::ChannelFailure) => self.events.push(ClientEvent::RequestFailure),
            Some(MsgType::RequestFailure) | Some(MsgType::RequestSuccess) => {
                self.events.push(ClientEvent::GlobalReply)
            }
            Some(MsgType::ChannelWindowAdjust) => {
                let (_, n) = msg::decode_window_adjust(payload)?;
                self.send_window = self.send_window.saturating_add(n);
            }
            Some(MsgType::ChannelData) => {
                let (_, data) = msg::decode_channel_data(payload)?;
                self.received.extend_from_slice(data);
            }
            Some(MsgType::ChannelEof) => self.events.push(ClientEvent::Eof),
            Some(MsgType::ChannelClose) => self.events.push(ClientEvent::Closed),
            Some(MsgType::ChannelRequest) => {
                let req = msg::ChannelRequest::decode(payload)?;
                if let msg::ChannelRequestKind::ExitStatus { status } = req.request {
                    self.events.push(ClientEvent::ExitStatus(status));
                }
            }
            Some(MsgType::Disconnect) => {
                let (code, text) = msg::decode_disconnect(payload)?;
                self.disconnect_text = Some(String::from_utf8_lossy(text).into_owned());
                self.events.push(ClientEvent::Disconnected(code));
            }
            Some(MsgType::Unimplemented) => self.events.push(ClientEvent::Unimplemented),
            Some(MsgType::Ignore) | Some(MsgType::Debug) => {}
            _ => return Err(Error::Protocol("client: unexpected message")),
        }
        Ok(())
    }

    fn on_kex_reply(&mut self, payload: &[u8]) -> Result<(), Error> {
        let reply = msg::decode_kex_ecdh_reply(payload)?;
        let (state, q_c) = self
            .kex
            .take()
            .ok_or(Error::Protocol("reply without init"))?;
        let alg = self.cfg.kex;
        let k = state
            .finish(reply.q_s)
            .map_err(|_| Error::KexFailed("server public"))?;
        let h = kex::exchange_hash(
            alg,
            &ExchangeHashInput {
                v_c: self.cfg.ident.as_bytes(),
                v_s: &self.server_ident,
                i_c: &self.our_kexinit,
                i_s: &self.server_kexinit,
                k_s: reply.k_s,
                q_c: &q_c,
                q_s: reply.q_s,
                k: &k,
            },
        );
        pubkey::verify(UserKeyAlg::Ed25519, reply.k_s, reply.signature, &h)
            .map_err(|_| Error::KexFailed("host key signature"))?;
        self.host_key = reply.k_s.to_vec();
        let session_id = self.session_id.get_or_insert_with(|| h.clone()).clone();
        let c = self.cfg.cipher;
        let derive =
            |letter: u8, len: usize| kex::derive_key(alg, &k, &h, letter, &session_id, len);
        let sealing = SealingKey::new(c, &derive(b'C', c.key_len()), &derive(b'A', c.iv_len()))
            .map_err(|_| Error::Internal("client key"))?;
        let opening = OpeningKey::new(c, &derive(b'D', c.key_len()), &derive(b'B', c.iv_len()))
            .map_err(|_| Error::Internal("client key"))?;
        self.send(msg::encode_newkeys);
        self.encoder.install_keys(sealing, self.cfg.strict_kex);
        self.pending_opening = Some(opening);
        if self.phase == Phase::KexReply && self.server_channel.is_none() && !self.has_authed() {
            self.phase = Phase::NewKeys;
        }
        Ok(())
    }

    fn has_authed(&self) -> bool {
        self.events.contains(&ClientEvent::AuthSuccess)
    }

    fn send_auth_request(&mut self) {
        let user = self.cfg.user.clone();
        match self.cfg.auth.clone() {
            ClientAuth::None => self.send(|o| msg::encode_userauth_request_none(o, &user)),
            ClientAuth::Password(pw) => {
                self.send(|o| msg::encode_userauth_request_password(o, &user, &pw))
            }
            ClientAuth::Ed25519 { seed, query_first } => {
                let req = if query_first {
                    Self::key_query(&user, &seed)
                } else {
                    self.signed_key_request(&user, &seed)
                };
                self.send(|o| o.extend_from_slice(&req));
            }
        }
    }
}

/// What [`serve`] does about one server event, once the event (which borrows the server) is
/// dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Nothing.
    Nothing,
    /// Answer the pending authentication request with this verdict.
    Auth(bool),
    /// Send the bytes back on the channel and return them to its window (a game running
    /// `cat`).
    Echo(ChannelId, Vec<u8>),
}

/// The server's half of one round of [`Client::pump`]: hand `server` the client's `input` (if
/// there is any) at time `now`, act on each of its events as `on_event` says, and queue its
/// output in `out`. Returns whether there was any event; an echo that does not fit the
/// client's window is an error.
pub fn serve(
    server: &mut ServerConnection,
    input: &[u8],
    now: Millis,
    mut on_event: impl FnMut(Event<'_>) -> Reply,
    out: &mut Vec<u8>,
) -> Result<bool, Error> {
    if !input.is_empty() {
        server.handle_input(input, now);
    }
    let mut any = false;
    while let Some(event) = server.poll_event() {
        any = true;
        match on_event(event) {
            Reply::Nothing => {}
            Reply::Auth(accept) => server.auth_reply(accept),
            Reply::Echo(channel, data) => {
                let sent = server.send_data(channel, &data);
                server.channel_consumed(channel, data.len());
                if sent != data.len() {
                    return Err(Error::Internal("echo does not fit the client's window"));
                }
            }
        }
    }
    server.poll_transmit(out);
    Ok(any)
}
