//! The SSH message table (RFC 4250 §4.1) and typed decoders/encoders for every message the
//! server reads or writes (RFC 4253, 4252, 4254, 8308).
//!
//! One macro invocation lists every message number once; it generates the constants, the
//! [`MsgType`] enum and the names used in errors and logs. Decoders borrow from the packet
//! payload and end with [`Reader::finish`], so a message with trailing bytes is rejected.
//! Encoders append a whole payload (message byte first) to a caller-owned buffer.

use super::wire::{self, NameList, Reader, WireError};

macro_rules! message_table {
    ($($variant:ident = $num:literal, $name:literal;)*) => {
        /// Every message number this implementation knows.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u8)]
        pub enum MsgType { $($variant = $num,)* }

        impl MsgType {
            pub fn from_u8(n: u8) -> Option<MsgType> {
                match n { $($num => Some(MsgType::$variant),)* _ => None }
            }
            pub fn name(self) -> &'static str {
                match self { $(MsgType::$variant => $name,)* }
            }
        }
    };
}

message_table! {
    Disconnect = 1, "SSH_MSG_DISCONNECT";
    Ignore = 2, "SSH_MSG_IGNORE";
    Unimplemented = 3, "SSH_MSG_UNIMPLEMENTED";
    Debug = 4, "SSH_MSG_DEBUG";
    ServiceRequest = 5, "SSH_MSG_SERVICE_REQUEST";
    ServiceAccept = 6, "SSH_MSG_SERVICE_ACCEPT";
    ExtInfo = 7, "SSH_MSG_EXT_INFO";
    KexInit = 20, "SSH_MSG_KEXINIT";
    NewKeys = 21, "SSH_MSG_NEWKEYS";
    KexEcdhInit = 30, "SSH_MSG_KEX_ECDH_INIT";
    KexEcdhReply = 31, "SSH_MSG_KEX_ECDH_REPLY";
    UserauthRequest = 50, "SSH_MSG_USERAUTH_REQUEST";
    UserauthFailure = 51, "SSH_MSG_USERAUTH_FAILURE";
    UserauthSuccess = 52, "SSH_MSG_USERAUTH_SUCCESS";
    UserauthBanner = 53, "SSH_MSG_USERAUTH_BANNER";
    UserauthPkOk = 60, "SSH_MSG_USERAUTH_PK_OK";
    GlobalRequest = 80, "SSH_MSG_GLOBAL_REQUEST";
    RequestSuccess = 81, "SSH_MSG_REQUEST_SUCCESS";
    RequestFailure = 82, "SSH_MSG_REQUEST_FAILURE";
    ChannelOpen = 90, "SSH_MSG_CHANNEL_OPEN";
    ChannelOpenConfirmation = 91, "SSH_MSG_CHANNEL_OPEN_CONFIRMATION";
    ChannelOpenFailure = 92, "SSH_MSG_CHANNEL_OPEN_FAILURE";
    ChannelWindowAdjust = 93, "SSH_MSG_CHANNEL_WINDOW_ADJUST";
    ChannelData = 94, "SSH_MSG_CHANNEL_DATA";
    ChannelExtendedData = 95, "SSH_MSG_CHANNEL_EXTENDED_DATA";
    ChannelEof = 96, "SSH_MSG_CHANNEL_EOF";
    ChannelClose = 97, "SSH_MSG_CHANNEL_CLOSE";
    ChannelRequest = 98, "SSH_MSG_CHANNEL_REQUEST";
    ChannelSuccess = 99, "SSH_MSG_CHANNEL_SUCCESS";
    ChannelFailure = 100, "SSH_MSG_CHANNEL_FAILURE";
}

impl MsgType {
    /// Messages of the transport layer's key exchange (RFC 4253 §7: 20–49), allowed while a
    /// key exchange is in progress.
    pub fn is_kex(n: u8) -> bool {
        (20..=49).contains(&n)
    }

    /// Messages of a particular key exchange method (30–49, RFC 4250 §4.1.2).
    pub fn is_kex_method_specific(n: u8) -> bool {
        (30..=49).contains(&n)
    }

    /// Transport-generic messages (1–19) that any peer may send at any time outside strict KEX.
    pub fn is_transport_generic(n: u8) -> bool {
        (1..=19).contains(&n)
    }
}

/// DISCONNECT reason codes (RFC 4250 §4.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum DisconnectReason {
    HostNotAllowedToConnect = 1,
    ProtocolError = 2,
    KeyExchangeFailed = 3,
    MacError = 5,
    ServiceNotAvailable = 7,
    ProtocolVersionNotSupported = 8,
    ConnectionLost = 10,
    ByApplication = 11,
    TooManyConnections = 12,
    AuthCancelledByUser = 13,
    NoMoreAuthMethodsAvailable = 14,
    IllegalUserName = 15,
}

/// Channel open failure reason codes (RFC 4254 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum OpenFailureReason {
    AdministrativelyProhibited = 1,
    ConnectFailed = 2,
    UnknownChannelType = 3,
    ResourceShortage = 4,
}

/// Start a payload: the message byte.
pub fn begin(out: &mut Vec<u8>, t: MsgType) {
    out.push(t as u8);
}

// ---------------------------------------------------------------------------------------------
// Transport (RFC 4253)
// ---------------------------------------------------------------------------------------------

/// SSH_MSG_KEXINIT (RFC 4253 §7.1). `raw` is the whole payload, kept for the exchange hash.
#[derive(Debug, Clone)]
pub struct KexInit<'a> {
    pub cookie: &'a [u8],
    pub kex: NameList<'a>,
    pub host_key: NameList<'a>,
    pub cipher_c2s: NameList<'a>,
    pub cipher_s2c: NameList<'a>,
    pub mac_c2s: NameList<'a>,
    pub mac_s2c: NameList<'a>,
    pub compression_c2s: NameList<'a>,
    pub compression_s2c: NameList<'a>,
    pub first_kex_packet_follows: bool,
}

impl<'a> KexInit<'a> {
    pub fn decode(payload: &'a [u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(payload.get(1..).unwrap_or_default());
        let cookie = r.bytes(16, "cookie")?;
        let kex = r.name_list()?;
        let host_key = r.name_list()?;
        let cipher_c2s = r.name_list()?;
        let cipher_s2c = r.name_list()?;
        let mac_c2s = r.name_list()?;
        let mac_s2c = r.name_list()?;
        let compression_c2s = r.name_list()?;
        let compression_s2c = r.name_list()?;
        let _languages_c2s = r.name_list()?;
        let _languages_s2c = r.name_list()?;
        let first_kex_packet_follows = r.bool()?;
        let _reserved = r.u32()?;
        r.finish()?;
        Ok(KexInit {
            cookie,
            kex,
            host_key,
            cipher_c2s,
            cipher_s2c,
            mac_c2s,
            mac_s2c,
            compression_c2s,
            compression_s2c,
            first_kex_packet_follows,
        })
    }
}

/// Name-lists of a KEXINIT we send.
pub struct KexInitLists<'a> {
    pub kex: &'a [&'a str],
    pub host_key: &'a [&'a str],
    pub ciphers: &'a [&'a str],
    pub macs: &'a [&'a str],
    pub compression: &'a [&'a str],
}

pub fn encode_kexinit(out: &mut Vec<u8>, cookie: &[u8; 16], l: &KexInitLists<'_>) {
    begin(out, MsgType::KexInit);
    out.extend_from_slice(cookie);
    wire::put_name_list(out, l.kex);
    wire::put_name_list(out, l.host_key);
    wire::put_name_list(out, l.ciphers);
    wire::put_name_list(out, l.ciphers);
    wire::put_name_list(out, l.macs);
    wire::put_name_list(out, l.macs);
    wire::put_name_list(out, l.compression);
    wire::put_name_list(out, l.compression);
    wire::put_name_list::<&str>(out, &[]);
    wire::put_name_list::<&str>(out, &[]);
    wire::put_bool(out, false);
    wire::put_u32(out, 0);
}

/// SSH_MSG_KEX_ECDH_INIT (RFC 5656 §4, also the hybrid KEX_HYBRID_INIT): the client's public.
pub fn decode_kex_ecdh_init(payload: &[u8]) -> Result<&[u8], WireError> {
    let mut r = Reader::new(payload.get(1..).unwrap_or_default());
    let q_c = r.string()?;
    r.finish()?;
    Ok(q_c)
}

pub fn encode_kex_ecdh_init(out: &mut Vec<u8>, q_c: &[u8]) {
    begin(out, MsgType::KexEcdhInit);
    wire::put_string(out, q_c);
}

/// SSH_MSG_KEX_ECDH_REPLY: host key blob, server public, signature of H.
pub fn encode_kex_ecdh_reply(out: &mut Vec<u8>, k_s: &[u8], q_s: &[u8], sig: &[u8]) {
    begin(out, MsgType::KexEcdhReply);
    wire::put_string(out, k_s);
    wire::put_string(out, q_s);
    wire::put_string(out, sig);
}

pub struct KexEcdhReply<'a> {
    pub k_s: &'a [u8],
    pub q_s: &'a [u8],
    pub signature: &'a [u8],
}

pub fn decode_kex_ecdh_reply(payload: &[u8]) -> Result<KexEcdhReply<'_>, WireError> {
    let mut r = Reader::new(payload.get(1..).unwrap_or_default());
    let k_s = r.string()?;
    let q_s = r.string()?;
    let signature = r.string()?;
    r.finish()?;
    Ok(KexEcdhReply {
        k_s,
        q_s,
        signature,
    })
}

pub fn encode_newkeys(out: &mut Vec<u8>) {
    begin(out, MsgType::NewKeys);
}

pub fn decode_empty(payload: &[u8]) -> Result<(), WireError> {
    Reader::new(payload.get(1..).unwrap_or_default()).finish()
}

pub fn encode_disconnect(out: &mut Vec<u8>, reason: DisconnectReason, description: &str) {
    begin(out, MsgType::Disconnect);
    wire::put_u32(out, reason as u32);
    wire::put_string(out, description.as_bytes());
    wire::put_string(out, b"");
}

/// SSH_MSG_DISCONNECT from the peer: reason code and description (lenient about trailing
/// fields: we are closing anyway).
pub fn decode_disconnect(payload: &[u8]) -> Result<(u32, &[u8]), WireError> {
    let mut r = Reader::new(payload.get(1..).unwrap_or_default());
    let code = r.u32()?;
    let desc = r.string()?;
    Ok((code, desc))
}

pub fn encode_unimplemented(out: &mut Vec<u8>, seq: u32) {
    begin(out, MsgType::Unimplemented);
    wire::put_u32(out, seq);
}

pub fn encode_ignore(out: &mut Vec<u8>, data: &[u8]) {
    begin(out, MsgType::Ignore);
    wire::put_string(out, data);
}

pub fn encode_debug(out: &mut Vec<u8>, message: &str) {
    begin(out, MsgType::Debug);
    wire::put_bool(out, false);
    wire::put_string(out, message.as_bytes());
    wire::put_string(out, b"");
}

pub fn decode_service_request(payload: &[u8]) -> Result<&[u8], WireError> {
    let mut r = Reader::new(payload.get(1..).unwrap_or_default());
    let name = r.string()?;
    r.finish()?;
    Ok(name)
}

pub fn encode_service_request(out: &mut Vec<u8>, name: &str) {
    begin(out, MsgType::ServiceRequest);
    wire::put_string(out, name.as_bytes());
}

pub fn encode_service_accept(out: &mut Vec<u8>, name: &[u8]) {
    begin(out, MsgType::ServiceAccept);
    wire::put_string(out, name);
}

/// SSH_MSG_EXT_INFO (RFC 8308 §2.3) with name/value pairs.
pub fn encode_ext_info(out: &mut Vec<u8>, extensions: &[(&str, &[u8])]) {
    begin(out, MsgType::ExtInfo);
    wire::put_u32(out, u32::try_from(extensions.len()).unwrap_or(u32::MAX));
    for (name, value) in extensions {
        wire::put_string(out, name.as_bytes());
        wire::put_string(out, value);
    }
}

// ---------------------------------------------------------------------------------------------
// User authentication (RFC 4252)
// ---------------------------------------------------------------------------------------------

/// SSH_MSG_USERAUTH_REQUEST with its method-specific fields.
#[derive(Clone)]
pub struct UserauthRequest<'a> {
    pub user: &'a [u8],
    pub service: &'a [u8],
    pub method: AuthMethod<'a>,
}

#[derive(Clone)]
pub enum AuthMethod<'a> {
    None,
    Password {
        password: &'a [u8],
    },
    /// A password change request (RFC 4252 §8, boolean TRUE): refused.
    PasswordChange,
    PublicKey {
        algorithm: &'a [u8],
        key_blob: &'a [u8],
        /// Present when the client signed; absent for the "may I use this key" query.
        signature: Option<&'a [u8]>,
    },
    Other {
        name: &'a [u8],
    },
}

impl std::fmt::Debug for AuthMethod<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthMethod::None => f.write_str("none"),
            AuthMethod::Password { .. } => f.write_str("password(<redacted>)"),
            AuthMethod::PasswordChange => f.write_str("password-change"),
            AuthMethod::PublicKey { signature, .. } => {
                write!(f, "publickey(signed: {})", signature.is_some())
            }
            AuthMethod::Other { name } => write!(f, "{}", String::from_utf8_lossy(name)),
        }
    }
}

impl<'a> UserauthRequest<'a> {
    pub fn decode(payload: &'a [u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(payload.get(1..).unwrap_or_default());
        let user = r.string()?;
        let service = r.string()?;
        let method_name = r.string()?;
        let method = match method_name {
            b"none" => AuthMethod::None,
            b"password" => {
                if r.bool()? {
                    let _old = r.string()?;
                    let _new = r.string()?;
                    AuthMethod::PasswordChange
                } else {
                    AuthMethod::Password {
                        password: r.string()?,
                    }
                }
            }
            b"publickey" => {
                let signed = r.bool()?;
                let algorithm = r.string()?;
                let key_blob = r.string()?;
                let signature = if signed { Some(r.string()?) } else { None };
                AuthMethod::PublicKey {
                    algorithm,
                    key_blob,
                    signature,
                }
            }
            other => {
                // Methods we do not implement (keyboard-interactive, hostbased, gssapi…):
                // their fields are not ours to parse.
                let _ = r.rest();
                AuthMethod::Other { name: other }
            }
        };
        r.finish()?;
        Ok(UserauthRequest {
            user,
            service,
            method,
        })
    }
}

pub fn encode_userauth_request_none(out: &mut Vec<u8>, user: &str) {
    begin(out, MsgType::UserauthRequest);
    wire::put_string(out, user.as_bytes());
    wire::put_string(out, b"ssh-connection");
    wire::put_string(out, b"none");
}

pub fn encode_userauth_request_password(out: &mut Vec<u8>, user: &str, password: &str) {
    begin(out, MsgType::UserauthRequest);
    wire::put_string(out, user.as_bytes());
    wire::put_string(out, b"ssh-connection");
    wire::put_string(out, b"password");
    wire::put_bool(out, false);
    wire::put_string(out, password.as_bytes());
}

/// The publickey request up to (not including) the signature: also the tail of the data a
/// client signs (RFC 4252 §7).
pub fn encode_userauth_request_publickey(
    out: &mut Vec<u8>,
    user: &[u8],
    service: &[u8],
    algorithm: &[u8],
    key_blob: &[u8],
    signed: bool,
) {
    begin(out, MsgType::UserauthRequest);
    wire::put_string(out, user);
    wire::put_string(out, service);
    wire::put_string(out, b"publickey");
    wire::put_bool(out, signed);
    wire::put_string(out, algorithm);
    wire::put_string(out, key_blob);
}

pub fn encode_userauth_failure(out: &mut Vec<u8>, methods: &[&str], partial: bool) {
    begin(out, MsgType::UserauthFailure);
    wire::put_name_list(out, methods);
    wire::put_bool(out, partial);
}

pub fn decode_userauth_failure(payload: &[u8]) -> Result<(NameList<'_>, bool), WireError> {
    let mut r = Reader::new(payload.get(1..).unwrap_or_default());
    let methods = r.name_list()?;
    let partial = r.bool()?;
    r.finish()?;
    Ok((methods, partial))
}

pub fn encode_userauth_success(out: &mut Vec<u8>) {
    begin(out, MsgType::UserauthSuccess);
}

pub fn encode_userauth_banner(out: &mut Vec<u8>, text: &str) {
    begin(out, MsgType::UserauthBanner);
    wire::put_string(out, text.as_bytes());
    wire::put_string(out, b"");
}

pub fn encode_userauth_pk_ok(out: &mut Vec<u8>, algorithm: &[u8], key_blob: &[u8]) {
    begin(out, MsgType::UserauthPkOk);
    wire::put_string(out, algorithm);
    wire::put_string(out, key_blob);
}

// ---------------------------------------------------------------------------------------------
// Connection protocol (RFC 4254)
// ---------------------------------------------------------------------------------------------

pub struct GlobalRequest<'a> {
    pub name: &'a [u8],
    pub want_reply: bool,
}

/// SSH_MSG_GLOBAL_REQUEST: request-specific data follows and is not ours to parse.
pub fn decode_global_request(payload: &[u8]) -> Result<GlobalRequest<'_>, WireError> {
    let mut r = Reader::new(payload.get(1..).unwrap_or_default());
    let name = r.string()?;
    let want_reply = r.bool()?;
    let _ = r.rest();
    Ok(GlobalRequest { name, want_reply })
}

/// SSH_MSG_GLOBAL_REQUEST with no request-specific data (e.g. `keepalive@openssh.com`).
pub fn encode_global_request(out: &mut Vec<u8>, name: &str, want_reply: bool) {
    begin(out, MsgType::GlobalRequest);
    wire::put_string(out, name.as_bytes());
    wire::put_bool(out, want_reply);
}

pub fn encode_request_failure(out: &mut Vec<u8>) {
    begin(out, MsgType::RequestFailure);
}

pub struct ChannelOpen<'a> {
    pub channel_type: &'a [u8],
    pub sender_channel: u32,
    pub initial_window: u32,
    pub max_packet: u32,
}

pub fn decode_channel_open(payload: &[u8]) -> Result<ChannelOpen<'_>, WireError> {
    let mut r = Reader::new(payload.get(1..).unwrap_or_default());
    let channel_type = r.string()?;
    let sender_channel = r.u32()?;
    let initial_window = r.u32()?;
    let max_packet = r.u32()?;
    // Type-specific data (direct-tcpip addresses, x11 originator) follows; we refuse those.
    let rest = r.rest();
    if channel_type == b"session" && !rest.is_empty() {
        return Err(WireError::TrailingBytes(rest.len()));
    }
    Ok(ChannelOpen {
        channel_type,
        sender_channel,
        initial_window,
        max_packet,
    })
}

pub fn encode_channel_open_session(out: &mut Vec<u8>, sender: u32, window: u32, max_packet: u32) {
    begin(out, MsgType::ChannelOpen);
    wire::put_string(out, b"session");
    wire::put_u32(out, sender);
    wire::put_u32(out, window);
    wire::put_u32(out, max_packet);
}

pub fn encode_channel_open_confirmation(
    out: &mut Vec<u8>,
    recipient: u32,
    sender: u32,
    window: u32,
    max_packet: u32,
) {
    begin(out, MsgType::ChannelOpenConfirmation);
    wire::put_u32(out, recipient);
    wire::put_u32(out, sender);
    wire::put_u32(out, window);
    wire::put_u32(out, max_packet);
}

pub struct ChannelOpenConfirmation {
    pub recipient: u32,
    pub sender: u32,
    pub window: u32,
    pub max_packet: u32,
}

pub fn decode_channel_open_confirmation(
    payload: &[u8],
) -> Result<ChannelOpenConfirmation, WireError> {
    let mut r = Reader::new(payload.get(1..).unwrap_or_default());
    let c = ChannelOpenConfirmation {
        recipient: r.u32()?,
        sender: r.u32()?,
        window: r.u32()?,
        max_packet: r.u32()?,
    };
    r.finish()?;
    Ok(c)
}

pub fn encode_channel_open_failure(
    out: &mut Vec<u8>,
    recipient: u32,
    reason: OpenFailureReason,
    description: &str,
) {
    begin(out, MsgType::ChannelOpenFailure);
    wire::put_u32(out, recipient);
    wire::put_u32(out, reason as u32);
    wire::put_string(out, description.as_bytes());
    wire::put_string(out, b"");
}

/// Messages that carry only a recipient channel (EOF, CLOSE, SUCCESS, FAILURE).
pub fn decode_channel_only(payload: &[u8]) -> Result<u32, WireError> {
    let mut r = Reader::new(payload.get(1..).unwrap_or_default());
    let c = r.u32()?;
    r.finish()?;
    Ok(c)
}

pub fn encode_channel_only(out: &mut Vec<u8>, t: MsgType, recipient: u32) {
    begin(out, t);
    wire::put_u32(out, recipient);
}

pub fn decode_window_adjust(payload: &[u8]) -> Result<(u32, u32), WireError> {
    let mut r = Reader::new(payload.get(1..).unwrap_or_default());
    let c = r.u32()?;
    let n = r.u32()?;
    r.finish()?;
    Ok((c, n))
}

pub fn encode_window_adjust(out: &mut Vec<u8>, recipient: u32, bytes: u32) {
    begin(out, MsgType::ChannelWindowAdjust);
    wire::put_u32(out, recipient);
    wire::put_u32(out, bytes);
}

pub fn decode_channel_data(payload: &[u8]) -> Result<(u32, &[u8]), WireError> {
    let mut r = Reader::new(payload.get(1..).unwrap_or_default());
    let c = r.u32()?;
    let data = r.string()?;
    r.finish()?;
    Ok((c, data))
}

pub fn decode_channel_extended_data(payload: &[u8]) -> Result<(u32, u32, &[u8]), WireError> {
    let mut r = Reader::new(payload.get(1..).unwrap_or_default());
    let c = r.u32()?;
    let code = r.u32()?;
    let data = r.string()?;
    r.finish()?;
    Ok((c, code, data))
}

/// Header of SSH_MSG_CHANNEL_DATA; the caller appends the data itself (so data can be copied
/// once, straight into the transmit buffer).
pub fn encode_channel_data_header(out: &mut Vec<u8>, recipient: u32, len: u32) {
    begin(out, MsgType::ChannelData);
    wire::put_u32(out, recipient);
    wire::put_u32(out, len);
}

/// SSH_MSG_CHANNEL_REQUEST with its request-specific fields decoded.
pub struct ChannelRequest<'a> {
    pub recipient: u32,
    pub want_reply: bool,
    pub request: ChannelRequestKind<'a>,
}

pub enum ChannelRequestKind<'a> {
    PtyReq {
        term: &'a [u8],
        cols: u32,
        rows: u32,
        px_width: u32,
        px_height: u32,
        modes: &'a [u8],
    },
    Shell,
    Exec {
        command: &'a [u8],
    },
    Env {
        name: &'a [u8],
        value: &'a [u8],
    },
    WindowChange {
        cols: u32,
        rows: u32,
        px_width: u32,
        px_height: u32,
    },
    Signal {
        name: &'a [u8],
    },
    ExitStatus {
        status: u32,
    },
    /// Anything else (subsystem, x11-req, auth-agent-req, keepalive…): refused.
    Other {
        name: &'a [u8],
    },
}

impl<'a> ChannelRequest<'a> {
    pub fn decode(payload: &'a [u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(payload.get(1..).unwrap_or_default());
        let recipient = r.u32()?;
        let name = r.string()?;
        let want_reply = r.bool()?;
        let request = match name {
            b"pty-req" => ChannelRequestKind::PtyReq {
                term: r.string()?,
                cols: r.u32()?,
                rows: r.u32()?,
                px_width: r.u32()?,
                px_height: r.u32()?,
                modes: r.string()?,
            },
            b"shell" => ChannelRequestKind::Shell,
            b"exec" => ChannelRequestKind::Exec {
                command: r.string()?,
            },
            b"env" => ChannelRequestKind::Env {
                name: r.string()?,
                value: r.string()?,
            },
            b"window-change" => ChannelRequestKind::WindowChange {
                cols: r.u32()?,
                rows: r.u32()?,
                px_width: r.u32()?,
                px_height: r.u32()?,
            },
            b"signal" => ChannelRequestKind::Signal { name: r.string()? },
            b"exit-status" => ChannelRequestKind::ExitStatus { status: r.u32()? },
            other => {
                let _ = r.rest();
                ChannelRequestKind::Other { name: other }
            }
        };
        r.finish()?;
        Ok(ChannelRequest {
            recipient,
            want_reply,
            request,
        })
    }
}

/// Begin a CHANNEL_REQUEST; request-specific fields are appended by the caller.
pub fn encode_channel_request_header(out: &mut Vec<u8>, recipient: u32, name: &str, want: bool) {
    begin(out, MsgType::ChannelRequest);
    wire::put_u32(out, recipient);
    wire::put_string(out, name.as_bytes());
    wire::put_bool(out, want);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn every_message_number_maps_back_to_its_type() {
        for n in 0..=255u8 {
            if let Some(t) = MsgType::from_u8(n) {
                assert_eq!(t as u8, n);
                assert!(t.name().starts_with("SSH_MSG_"));
            }
        }
        assert_eq!(MsgType::from_u8(94), Some(MsgType::ChannelData));
        assert_eq!(MsgType::from_u8(200), None);
    }

    #[test]
    fn kexinit_round_trips() {
        let mut out = Vec::new();
        let lists = KexInitLists {
            kex: &["curve25519-sha256", "kex-strict-s-v00@openssh.com"],
            host_key: &["ssh-ed25519"],
            ciphers: &["chacha20-poly1305@openssh.com"],
            macs: &["hmac-sha2-256-etm@openssh.com"],
            compression: &["none"],
        };
        encode_kexinit(&mut out, &[7; 16], &lists);
        let k = KexInit::decode(&out).unwrap();
        assert_eq!(k.cookie, &[7; 16]);
        assert!(k.kex.contains("kex-strict-s-v00@openssh.com"));
        assert_eq!(k.cipher_s2c.as_str(), "chacha20-poly1305@openssh.com");
        assert!(!k.first_kex_packet_follows);
        let mut longer = out.clone();
        longer.push(0);
        assert!(KexInit::decode(&longer).is_err());
        assert!(KexInit::decode(&out[..out.len() - 1]).is_err());
    }

    #[test]
    fn userauth_requests_round_trip() {
        let mut out = Vec::new();
        encode_userauth_request_password(&mut out, "alice", "hunter22");
        let r = UserauthRequest::decode(&out).unwrap();
        assert_eq!(r.user, b"alice");
        assert!(matches!(r.method, AuthMethod::Password { password } if password == b"hunter22"));
        assert!(!format!("{:?}", r.method).contains("hunter22"));

        let mut out = Vec::new();
        encode_userauth_request_publickey(
            &mut out,
            b"bob",
            b"ssh-connection",
            b"ssh-ed25519",
            b"blob",
            true,
        );
        wire::put_string(&mut out, b"sig");
        let r = UserauthRequest::decode(&out).unwrap();
        assert!(matches!(
            r.method,
            AuthMethod::PublicKey {
                signature: Some(b"sig"),
                ..
            }
        ));

        let mut out = Vec::new();
        encode_userauth_request_none(&mut out, "guest");
        assert!(matches!(
            UserauthRequest::decode(&out).unwrap().method,
            AuthMethod::None
        ));
    }

    #[test]
    fn password_auth_with_trailing_bytes_is_rejected() {
        let mut out = Vec::new();
        encode_userauth_request_password(&mut out, "alice", "pw");
        out.extend_from_slice(b"junk");
        assert!(UserauthRequest::decode(&out).is_err());
    }

    #[test]
    fn channel_requests_decode() {
        let mut out = Vec::new();
        encode_channel_request_header(&mut out, 3, "pty-req", true);
        wire::put_string(&mut out, b"xterm-256color");
        for v in [80, 24, 0, 0] {
            wire::put_u32(&mut out, v);
        }
        wire::put_string(&mut out, &[0]);
        let r = ChannelRequest::decode(&out).unwrap();
        assert_eq!(r.recipient, 3);
        assert!(r.want_reply);
        assert!(matches!(
            r.request,
            ChannelRequestKind::PtyReq {
                cols: 80,
                rows: 24,
                ..
            }
        ));

        let mut out = Vec::new();
        encode_channel_request_header(&mut out, 0, "window-change", false);
        for v in [100, 40, 0, 0] {
            wire::put_u32(&mut out, v);
        }
        let r = ChannelRequest::decode(&out).unwrap();
        assert!(matches!(
            r.request,
            ChannelRequestKind::WindowChange {
                cols: 100,
                rows: 40,
                ..
            }
        ));
    }

    #[test]
    fn channel_data_round_trips() {
        let mut out = Vec::new();
        encode_channel_data_header(&mut out, 5, 3);
        out.extend_from_slice(b"abc");
        assert_eq!(decode_channel_data(&out).unwrap(), (5, &b"abc"[..]));
        out.push(1);
        assert!(decode_channel_data(&out).is_err());
    }
}
