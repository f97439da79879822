//! Errors of the SSH core, kept apart by whose fault they are: the peer broke the protocol,
//! the peer lacks something we require, or we have a bug. Each maps to the DISCONNECT reason
//! code (RFC 4253 §11.1) sent before closing.

use super::msg::DisconnectReason;
use super::wire::WireError;
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Error {
    // --- the peer broke the protocol ---
    #[error("bad identification: {0}")]
    BadIdentification(&'static str),
    #[error("packet length {0} exceeds the limit")]
    PacketTooLong(usize),
    #[error("message authentication failed")]
    MacMismatch,
    #[error("malformed message: {0}")]
    Malformed(#[from] WireError),
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    #[error("unexpected {got} while {expected}")]
    Unexpected {
        expected: &'static str,
        got: &'static str,
    },
    #[error("strict KEX violation: {0}")]
    StrictKex(&'static str),
    #[error("key exchange failed: {0}")]
    KexFailed(&'static str),
    #[error("too many authentication failures")]
    TooManyAuthFailures,
    #[error("service not available")]
    ServiceNotAvailable,
    // --- the peer lacks a feature we require ---
    #[error("no common {0} algorithm")]
    NoCommonAlgorithm(&'static str),
    // --- time limits ---
    #[error("authentication not completed within the login grace time")]
    LoginGraceExpired,
    #[error("the peer stopped reading: output stayed over its cap past the deadline")]
    OutputStalled,
    // --- our bug ---
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl Error {
    /// The reason code sent in SSH_MSG_DISCONNECT for this error.
    pub fn disconnect_reason(&self) -> DisconnectReason {
        match self {
            Error::BadIdentification(_) => DisconnectReason::ProtocolVersionNotSupported,
            Error::MacMismatch => DisconnectReason::MacError,
            Error::KexFailed(_) | Error::NoCommonAlgorithm(_) => {
                DisconnectReason::KeyExchangeFailed
            }
            Error::TooManyAuthFailures => DisconnectReason::NoMoreAuthMethodsAvailable,
            Error::ServiceNotAvailable => DisconnectReason::ServiceNotAvailable,
            Error::LoginGraceExpired | Error::OutputStalled => DisconnectReason::ByApplication,
            Error::Internal(_) => DisconnectReason::ByApplication,
            Error::PacketTooLong(_)
            | Error::Malformed(_)
            | Error::Protocol(_)
            | Error::Unexpected { .. }
            | Error::StrictKex(_) => DisconnectReason::ProtocolError,
        }
    }

    /// Whether the fault lies with the peer (for metrics and log levels).
    pub fn is_peer_fault(&self) -> bool {
        !matches!(self, Error::Internal(_) | Error::LoginGraceExpired)
    }
}
