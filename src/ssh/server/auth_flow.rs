//! User authentication, server side (RFC 4252): `none`, `password` and `publickey` (with the
//! query / PK_OK flow of §7), the banner of §5.4, a cap on failures, and a reset of per-user
//! state when the client changes the user name mid-way (§5).
//!
//! Signatures are verified here, before the application is asked, and the key that is
//! authorised is the one in the signed request itself: a PK_OK for key A never lets a
//! signature by key B in.

use super::{Error, PacketCtx, RawAttempt, RawEvent, ServerConnection};
use crate::ssh::msg::{self, AuthMethod, MsgType, UserauthRequest};
use crate::ssh::pubkey;
use crate::ssh::wire;

/// Methods announced in USERAUTH_FAILURE.
const METHODS: &[&str] = &["publickey", "password"];
/// Longest user name we consider (longer ones simply fail).
const MAX_USER_LEN: usize = 64;
/// Requests of any kind allowed per connection, so free methods (`none`, unknown ones)
/// cannot be repeated forever.
const MAX_REQUESTS: u32 = 64;

/// What the pending application decision is about.
enum Pending {
    None,
    Password,
    /// A query: on accept we answer PK_OK with these.
    KeyQuery {
        algorithm: Vec<u8>,
        key_blob: Vec<u8>,
    },
    /// A verified signature: on accept the user is in.
    KeySigned,
}

#[derive(Default)]
pub(super) struct AuthFlow {
    /// SERVICE_REQUEST "ssh-userauth" was accepted.
    service_accepted: bool,
    /// The user name of the request being decided, or of the last one.
    current_user: Option<String>,
    /// Waiting for the application's answer to this request.
    pending: Option<Pending>,
    /// The user name once authentication succeeded.
    authenticated: Option<String>,
    /// Failed attempts so far (the first `none` does not count, as in OpenSSH).
    failures: u32,
    /// Requests so far, of any kind.
    requests: u32,
    /// The banner has been sent.
    banner_sent: bool,
}

impl AuthFlow {
    pub(super) fn is_waiting(&self) -> bool {
        self.pending.is_some()
    }
    pub(super) fn is_authenticated(&self) -> bool {
        self.authenticated.is_some()
    }
    pub(super) fn user(&self) -> Option<&str> {
        self.authenticated.as_deref()
    }
    pub(super) fn accept_service(&mut self) {
        self.service_accepted = true;
    }
}

impl ServerConnection {
    /// The application's answer to the last [`super::Event::AuthRequest`].
    pub fn auth_reply(&mut self, accept: bool) {
        let Some(pending) = self.auth.pending.take() else {
            return;
        };
        if self.closed {
            return;
        }
        self.send_banner_once();
        match (pending, accept) {
            (
                Pending::KeyQuery {
                    algorithm,
                    key_blob,
                },
                true,
            ) => {
                self.send(|o| msg::encode_userauth_pk_ok(o, &algorithm, &key_blob));
            }
            (_, true) => {
                self.auth.authenticated = self.auth.current_user.clone();
                self.send(msg::encode_userauth_success);
            }
            (Pending::None, false) => {
                // The usual probe of OpenSSH clients; only a repeat counts.
                self.auth_failure(self.auth.requests > 1);
            }
            (_, false) => self.auth_failure(true),
        }
    }

    pub(super) fn handle_userauth(
        &mut self,
        n: u8,
        payload: &[u8],
        ctx: &PacketCtx,
    ) -> Result<Option<RawEvent>, Error> {
        if n != MsgType::UserauthRequest as u8 {
            return Err(Error::Unexpected {
                expected: "SSH_MSG_USERAUTH_REQUEST",
                got: "a server-side authentication message",
            });
        }
        if !self.auth.service_accepted {
            return Err(Error::Unexpected {
                expected: "SSH_MSG_SERVICE_REQUEST",
                got: "SSH_MSG_USERAUTH_REQUEST",
            });
        }
        let req = UserauthRequest::decode(payload)?;
        if self.auth.authenticated.is_some() {
            // RFC 4252 §5.1: requests after success are ignored.
            return Ok(None);
        }
        self.auth.requests = self.auth.requests.saturating_add(1);
        if self.auth.requests > MAX_REQUESTS {
            return Err(Error::TooManyAuthFailures);
        }
        if req.service != b"ssh-connection" {
            return Err(Error::ServiceNotAvailable);
        }
        let user = match std::str::from_utf8(req.user) {
            Ok(u)
                if !u.is_empty() && u.len() <= MAX_USER_LEN && !u.chars().any(char::is_control) =>
            {
                u
            }
            _ => {
                self.send_banner_once();
                self.auth_failure(true);
                return Ok(None);
            }
        };
        if self.auth.current_user.as_deref() != Some(user) {
            // A new user name: nothing decided for the previous one carries over.
            self.auth.current_user = Some(user.to_owned());
        }
        let user_range = ctx.range(req.user);
        let attempt = match req.method {
            AuthMethod::None => {
                self.auth.pending = Some(Pending::None);
                RawAttempt::None
            }
            AuthMethod::Password { password } => {
                self.auth.pending = Some(Pending::Password);
                RawAttempt::Password(ctx.range(password))
            }
            AuthMethod::PublicKey {
                algorithm,
                key_blob,
                signature,
            } => {
                let Some(alg) = std::str::from_utf8(algorithm)
                    .ok()
                    .and_then(|a| pubkey::check_alg_matches_blob(a, key_blob).ok())
                else {
                    self.send_banner_once();
                    self.auth_failure(true);
                    return Ok(None);
                };
                match signature {
                    None => {
                        self.auth.pending = Some(Pending::KeyQuery {
                            algorithm: algorithm.to_vec(),
                            key_blob: key_blob.to_vec(),
                        });
                        RawAttempt::PublicKey {
                            algorithm: alg,
                            key_blob: ctx.range(key_blob),
                            signed: false,
                        }
                    }
                    Some(sig) => {
                        if !self.signature_is_valid(&req, alg, algorithm, key_blob, sig) {
                            self.send_banner_once();
                            self.auth_failure(true);
                            return Ok(None);
                        }
                        self.auth.pending = Some(Pending::KeySigned);
                        RawAttempt::PublicKey {
                            algorithm: alg,
                            key_blob: ctx.range(key_blob),
                            signed: true,
                        }
                    }
                }
            }
            AuthMethod::PasswordChange | AuthMethod::Other { .. } => {
                self.send_banner_once();
                self.auth_failure(false);
                return Ok(None);
            }
        };
        Ok(Some(RawEvent::Auth {
            user: user_range,
            attempt,
        }))
    }

    /// RFC 4252 §7: the signature covers the session id and the request up to the signature.
    fn signature_is_valid(
        &self,
        req: &UserauthRequest<'_>,
        alg: pubkey::UserKeyAlg,
        algorithm: &[u8],
        key_blob: &[u8],
        signature: &[u8],
    ) -> bool {
        let Some(session_id) = self.kex.session_id() else {
            return false;
        };
        let mut signed = Vec::with_capacity(session_id.len() + key_blob.len() + 128);
        wire::put_string(&mut signed, session_id);
        msg::encode_userauth_request_publickey(
            &mut signed,
            req.user,
            req.service,
            algorithm,
            key_blob,
            true,
        );
        pubkey::verify(alg, key_blob, signature, &signed).is_ok()
    }

    fn send_banner_once(&mut self) {
        if self.auth.banner_sent {
            return;
        }
        self.auth.banner_sent = true;
        if let Some(text) = self.settings.auth_banner.clone() {
            self.send(|o| msg::encode_userauth_banner(o, &text));
        }
    }

    fn auth_failure(&mut self, counts: bool) {
        if counts {
            self.auth.failures = self.auth.failures.saturating_add(1);
        }
        if self.auth.failures >= self.settings.max_auth_tries {
            self.fail(Error::TooManyAuthFailures);
            return;
        }
        self.send(|o| msg::encode_userauth_failure(o, METHODS, false));
    }
}
