//! SSH user authentication (RFC 4252) as the session sees it: each request the SSH core
//! cannot decide becomes a control-core request, and its answer goes back to the core with
//! [`crate::ssh::server::ServerConnection::auth_reply`]. Kept here: who logged in, whether
//! this connection ever did, and whether it earned its source a penalty. A key query that is
//! answered "yes" (PK_OK) logs nobody in; failed attempts are forgiven by a later success.
//! A guest who got in with a signed key keeps that key's blob: the lobby offers to bind it
//! to the account the guest registers.

use super::lograte::Verdict;
use super::requests::Pending;
use super::{Effect, Session};
use crate::control::{Reply, Request, SshAttempt, SshOutcome};
use crate::lobby::UserInfo;
use crate::metrics::AuthMethod;
use crate::ssh::server::AuthAttempt;
use zeroize::Zeroizing;

/// Who the SSH login made this connection.
#[derive(Debug, Clone)]
pub(super) enum Identity {
    /// An unregistered SSH name (the anonymous lobby).
    Guest,
    /// A registered, authenticated account.
    User(UserInfo),
}

#[derive(Default)]
pub(super) struct Auth {
    /// Who is logged in at the SSH level, once known.
    identity: Option<Identity>,
    /// A login succeeded (reported once, as [`Effect::LoggedIn`]).
    logged_in: bool,
    /// Failed attempts, login grace run out or a protocol error: its source is penalized
    /// when the connection ends without a login.
    offence: bool,
    /// The public key blob a guest logged in with (its signature verified by the SSH core),
    /// until it is bound to a newly registered account or the connection ends.
    guest_key: Option<Vec<u8>>,
}

/// An authentication request waiting for the control core.
pub(super) struct AuthAsk {
    /// The SSH user name (logged, and the span's `user`).
    user: String,
    /// The method's name, for logs.
    method: &'static str,
    /// The method, for metrics.
    kind: AuthMethod,
    /// A real attempt (a key query is only a question).
    is_attempt: bool,
    /// The key blob of a signed publickey attempt (kept if it lets a guest in).
    signed_key: Option<Vec<u8>>,
}

impl Auth {
    pub fn logged_in(&self) -> bool {
        self.logged_in
    }

    pub fn offence(&self) -> bool {
        self.offence
    }

    /// The registered account logged in at the SSH level, if any.
    pub fn user(&self) -> Option<&UserInfo> {
        match &self.identity {
            Some(Identity::User(u)) => Some(u),
            _ => None,
        }
    }

    /// Whether the SSH login is the account `name`.
    pub fn is_user(&self, name: &str) -> bool {
        self.user()
            .is_some_and(|u| u.name.eq_ignore_ascii_case(name))
    }

    /// The connection ended on a protocol error or ran out of login grace.
    pub fn mark_offence(&mut self) {
        self.offence = true;
    }

    /// Fingerprint of the key a guest logged in with, if any (for the lobby's offer).
    pub fn guest_key_fingerprint(&self) -> Option<String> {
        self.guest_key.as_deref().map(crate::auth::key_fingerprint)
    }

    /// The key a guest logged in with, handed over once (to be bound to a new account).
    pub fn take_guest_key(&mut self) -> Option<Vec<u8>> {
        self.guest_key.take()
    }
}

/// The SSH core's attempt, owned (it crosses to the control core).
pub(super) fn owned_attempt(attempt: AuthAttempt<'_>) -> SshAttempt {
    match attempt {
        AuthAttempt::None => SshAttempt::None,
        AuthAttempt::Password(p) => {
            SshAttempt::Password(Zeroizing::new(String::from_utf8_lossy(p).into_owned()))
        }
        AuthAttempt::PublicKey {
            key_blob, signed, ..
        } => SshAttempt::Key {
            blob: key_blob.to_vec(),
            signed,
        },
    }
}

impl Session {
    /// The SSH core asks about an authentication attempt: ask the control core.
    pub(super) fn ask_auth(&mut self, user: String, attempt: SshAttempt) {
        let (method, kind, is_attempt) = match &attempt {
            SshAttempt::None => ("none", AuthMethod::None, true),
            SshAttempt::Password(_) => ("password", AuthMethod::Password, true),
            // A key query is a question, not an attempt.
            SshAttempt::Key { signed, .. } => ("publickey", AuthMethod::PublicKey, *signed),
        };
        let signed_key = match &attempt {
            SshAttempt::Key { blob, signed: true } => Some(blob.clone()),
            _ => None,
        };
        let request = Request::SshAuth {
            user: user.clone(),
            attempt,
            source: self.client_ip(),
        };
        let ask = AuthAsk {
            user,
            method,
            kind,
            is_attempt,
            signed_key,
        };
        self.requests
            .ask(&mut self.effects, request, Pending::Auth(ask));
    }

    /// The control core's verdict on an authentication attempt: book-keeping, then the
    /// answer to the SSH core. After the connection ended it is dropped.
    pub(super) fn auth_answered(&mut self, ask: AuthAsk, reply: Reply) {
        if self.closed {
            return;
        }
        let outcome = match reply {
            Reply::Ssh(o) => o,
            _ => SshOutcome::Denied,
        };
        let accepted = !matches!(outcome, SshOutcome::Denied);
        let AuthAsk {
            user,
            method,
            kind,
            is_attempt,
            signed_key,
        } = ask;
        tracing::debug!(method, accepted, "authentication decided");
        if is_attempt {
            self.env.metrics.auth_attempt(kind, accepted);
        }
        // A key query that is answered "yes" (PK_OK) logs nobody in: the connection is only
        // someone's once an attempt succeeds.
        if accepted && is_attempt {
            if !self.auth.logged_in {
                self.auth.logged_in = true;
                // Failed attempts before a success are forgiven (a typo, then the password).
                self.auth.offence = false;
                self.effects.push_back(Effect::LoggedIn);
                if self.channels.is_empty() {
                    self.channelless_since = Some(self.now);
                }
            }
            if self.auth.identity.is_none() {
                self.span
                    .record("user", crate::auth::printable(&user).as_str());
            }
            self.auth.identity = Some(match outcome {
                SshOutcome::User(info) => Identity::User(info),
                _ => Identity::Guest,
            });
            if matches!(self.auth.identity, Some(Identity::Guest)) {
                self.auth.guest_key = signed_key;
            }
        } else if !accepted && method != "none" {
            if is_attempt {
                self.auth.offence = true;
            }
            let user = crate::auth::printable(&user);
            match self.env.log_rate.check(self.client_ip(), self.now) {
                Verdict::Log => tracing::info!(user = %user, method, "authentication failed"),
                Verdict::LogLast => tracing::info!(
                    user = %user,
                    method,
                    "authentication failed (further lines from this address suppressed for a minute)"
                ),
                Verdict::Suppress => {}
            }
        }
        self.ssh.auth_reply(accepted);
    }
}
