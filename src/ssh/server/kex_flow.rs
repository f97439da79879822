//! Key exchange on the server side (RFC 4253 §7–8, RFC 8731, OpenSSH PROTOCOL for
//! `kex-strict-*`, RFC 8308 for `ext-info-c`): algorithm negotiation, the ECDH-style exchange
//! shared by curve25519 and the post-quantum hybrids, NEWKEYS, re-keying by either side, and
//! strict KEX (the Terrapin countermeasure).

use super::{Error, Event, Millis, RawEvent, ServerConnection, ServerSettings};
use crate::ssh::cipher::{CipherAlg, OpeningKey, SealingKey};
use crate::ssh::kex::{self, ExchangeHashInput, KexAlg};
use crate::ssh::msg::{self, KexInit, MsgType};

/// Server-side marker of strict KEX support (OpenSSH PROTOCOL §1.10).
const STRICT_KEX_SERVER: &str = "kex-strict-s-v00@openssh.com";
const STRICT_KEX_CLIENT: &str = "kex-strict-c-v00@openssh.com";
const EXT_INFO_CLIENT: &str = "ext-info-c";
const HOST_KEY_ALG: &str = "ssh-ed25519";
/// Listed for form only: every cipher we offer is AEAD, for which the MAC is not used
/// (the same rule OpenSSH applies), but clients expect a non-empty MAC list.
const MACS: &[&str] = &[
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
];
/// Algorithms advertised to clients in `server-sig-algs` (RFC 8308 §3.1).
const SERVER_SIG_ALGS: &[u8] = b"ssh-ed25519,ecdsa-sha2-nistp256,rsa-sha2-512,rsa-sha2-256";

/// What both sides agreed on.
#[derive(Debug, Clone, Copy)]
pub(super) struct Negotiated {
    kex: KexAlg,
    cipher_c2s: CipherAlg,
    cipher_s2c: CipherAlg,
}

/// Where a key exchange stands.
enum Phase {
    /// No exchange running.
    Idle,
    /// Our KEXINIT is out; waiting for the client's.
    InitSent { ours: Vec<u8> },
    /// Both KEXINITs are known; waiting for the client's public value.
    AwaitClientPublic {
        ours: Vec<u8>,
        theirs: Vec<u8>,
        neg: Negotiated,
        /// The client announced a guessed KEX packet and guessed wrong: the next packet is
        /// that guess and is ignored (RFC 4253 §7).
        skip_guess: bool,
    },
    /// We sent our reply and NEWKEYS; waiting for the client's NEWKEYS.
    AwaitNewKeys {
        /// Boxed: key schedules are large and this state is brief.
        opening: Box<OpeningKey>,
        neg: Negotiated,
    },
}

/// Per-connection KEX state.
pub(super) struct KexFlow {
    phase: Phase,
    /// The first exchange hash; identifies the session for signatures and key derivation.
    session_id: Option<Vec<u8>>,
    /// Both sides announced strict KEX in the first KEXINIT.
    strict: bool,
    /// The first exchange finished (before that only KEX messages are allowed).
    first_done: bool,
    /// The client asked for EXT_INFO (RFC 8308) in its first KEXINIT.
    client_ext_info: bool,
    /// When the current keys were installed, for time-based re-keying.
    keys_since: Millis,
}

impl KexFlow {
    pub(super) fn new(now: Millis) -> Self {
        KexFlow {
            phase: Phase::Idle,
            session_id: None,
            strict: false,
            first_done: false,
            client_ext_info: false,
            keys_since: now,
        }
    }

    pub(super) fn session_id(&self) -> Option<&[u8]> {
        self.session_id.as_deref()
    }

    pub(super) fn first_done(&self) -> bool {
        self.first_done
    }

    /// Our KEXINIT is out and our NEWKEYS is not: non-KEX messages must wait.
    pub(super) fn output_held(&self) -> bool {
        matches!(
            self.phase,
            Phase::InitSent { .. } | Phase::AwaitClientPublic { .. }
        )
    }

    /// Whether a client message of type `n` is allowed now (strict KEX, RFC 4253 §7.1).
    /// Whether the client's KEXINIT was its first packet is checked once it is decoded,
    /// because only the KEXINIT says whether the client wants strict KEX.
    pub(super) fn check_allowed(&self, n: u8) -> Result<(), Error> {
        let in_client_kex = matches!(
            self.phase,
            Phase::AwaitClientPublic { .. } | Phase::AwaitNewKeys { .. }
        );
        if !self.first_done {
            if self.strict && !MsgType::is_kex(n) {
                return Err(Error::StrictKex(
                    "non-KEX message during the initial key exchange",
                ));
            }
            if !MsgType::is_kex(n) && !matches!(n, 1..=4) {
                return Err(Error::Unexpected {
                    expected: "key exchange",
                    got: "a message of a later protocol layer",
                });
            }
        } else if in_client_kex && !MsgType::is_kex(n) && !MsgType::is_transport_generic(n) {
            return Err(Error::Unexpected {
                expected: "key exchange",
                got: "a connection message during re-key",
            });
        }
        Ok(())
    }

    /// Deadline of the time-based re-key, when no exchange is running.
    pub(super) fn next_time_rekey(&self, s: &ServerSettings) -> Option<Millis> {
        match self.phase {
            Phase::Idle if self.first_done => {
                Some(self.keys_since.saturating_add(s.rekey_interval_ms))
            }
            _ => None,
        }
    }
}

impl ServerConnection {
    /// Send our KEXINIT (on connect and when we decide to re-key).
    pub(super) fn start_kex(&mut self) {
        let ours = self.build_kexinit();
        self.send_now(|o| o.extend_from_slice(&ours));
        self.kex.phase = Phase::InitSent { ours };
    }

    /// Re-key when the byte or time budget of the current keys is spent.
    pub(super) fn maybe_rekey(&mut self) {
        if self.closed || !self.kex.first_done || !matches!(self.kex.phase, Phase::Idle) {
            return;
        }
        let bytes = self
            .encoder
            .bytes_since_keys
            .saturating_add(self.decoder.bytes_since_keys);
        let due = self
            .kex
            .keys_since
            .saturating_add(self.settings.rekey_interval_ms);
        if bytes >= self.settings.rekey_bytes || self.now >= due {
            self.start_kex();
        }
    }

    fn build_kexinit(&self) -> Vec<u8> {
        let mut kex_names: Vec<&str> = self.settings.kex.iter().map(|k| k.name()).collect();
        if self.kex.session_id.is_none() {
            // Markers belong in the first KEXINIT only.
            kex_names.push(STRICT_KEX_SERVER);
        }
        let ciphers: Vec<&str> = self.settings.ciphers.iter().map(|c| c.name()).collect();
        let mut cookie = [0u8; 16];
        crate::ssh::random::fill(&mut cookie);
        let mut out = Vec::with_capacity(512);
        msg::encode_kexinit(
            &mut out,
            &cookie,
            &msg::KexInitLists {
                kex: &kex_names,
                host_key: &[HOST_KEY_ALG],
                ciphers: &ciphers,
                macs: MACS,
                compression: &["none"],
            },
        );
        out
    }

    /// KEXINIT, KEX_ECDH_INIT and NEWKEYS from the client.
    pub(super) fn handle_kex_message(
        &mut self,
        n: u8,
        payload: &[u8],
    ) -> Result<Option<RawEvent>, Error> {
        if let Phase::AwaitClientPublic { skip_guess, .. } = &mut self.kex.phase {
            if std::mem::take(skip_guess) {
                // A guess is the first message of the client's favourite method, whatever
                // that method is (30–49); anything else cannot be one.
                if MsgType::is_kex_method_specific(n) {
                    return Ok(None);
                }
                return Err(Error::Unexpected {
                    expected: "the client's guessed key exchange packet",
                    got: "a message that no key exchange method starts with",
                });
            }
        }
        match MsgType::from_u8(n) {
            Some(MsgType::KexInit) => self.on_client_kexinit(payload).map(|()| None),
            Some(MsgType::KexEcdhInit) => self.on_client_public(payload).map(|()| None),
            Some(MsgType::NewKeys) => self.on_client_newkeys(payload),
            _ => Err(Error::Unexpected {
                expected: "KEXINIT, KEX_ECDH_INIT or NEWKEYS",
                got: "another key exchange message",
            }),
        }
    }

    fn on_client_kexinit(&mut self, payload: &[u8]) -> Result<(), Error> {
        let theirs = KexInit::decode(payload)?;
        let first = !self.kex.first_done;
        if first {
            self.kex.strict = theirs.kex.contains(STRICT_KEX_CLIENT);
            self.kex.client_ext_info = theirs.kex.contains(EXT_INFO_CLIENT);
            if self.kex.strict && self.decoder.packets_since_keys != 1 {
                return Err(Error::StrictKex("KEXINIT was not the first packet"));
            }
        }
        let ours = match std::mem::replace(&mut self.kex.phase, Phase::Idle) {
            Phase::InitSent { ours } => ours,
            Phase::Idle => {
                // The client starts a re-key: answer with ours.
                let ours = self.build_kexinit();
                self.send_now(|o| o.extend_from_slice(&ours));
                ours
            }
            _ => {
                return Err(Error::Unexpected {
                    expected: "KEX_ECDH_INIT or NEWKEYS",
                    got: "SSH_MSG_KEXINIT",
                })
            }
        };
        let neg = self.negotiate(&theirs)?;
        // RFC 4253 §7: a guess is right only when both sides list the same key exchange first
        // and the same host key algorithm first (OpenSSH compares exactly these). Comparing
        // with the negotiated algorithm instead takes a guess the client itself knows to be
        // wrong, and then fails on the replacement packet it sends (dropbear's dbclient).
        let guessed_right = theirs.kex.iter().next() == self.settings.kex.first().map(|k| k.name())
            && theirs.host_key.iter().next() == Some(HOST_KEY_ALG);
        self.kex.phase = Phase::AwaitClientPublic {
            ours,
            theirs: payload.to_vec(),
            neg,
            skip_guess: theirs.first_kex_packet_follows && !guessed_right,
        };
        Ok(())
    }

    /// RFC 4253 §7.1: for each list, the first client algorithm the server also supports.
    fn negotiate(&self, theirs: &KexInit<'_>) -> Result<Negotiated, Error> {
        let kex = theirs
            .kex
            .iter()
            .find_map(|name| self.settings.kex.iter().copied().find(|k| k.name() == name))
            .ok_or(Error::NoCommonAlgorithm("key exchange"))?;
        if !theirs.host_key.contains(HOST_KEY_ALG) {
            return Err(Error::NoCommonAlgorithm("host key"));
        }
        let pick = |list: crate::ssh::wire::NameList<'_>| {
            list.iter().find_map(|name| {
                self.settings
                    .ciphers
                    .iter()
                    .copied()
                    .find(|c| c.name() == name)
            })
        };
        let cipher_c2s = pick(theirs.cipher_c2s).ok_or(Error::NoCommonAlgorithm("cipher"))?;
        let cipher_s2c = pick(theirs.cipher_s2c).ok_or(Error::NoCommonAlgorithm("cipher"))?;
        if !theirs.compression_c2s.contains("none") || !theirs.compression_s2c.contains("none") {
            return Err(Error::NoCommonAlgorithm("compression"));
        }
        Ok(Negotiated {
            kex,
            cipher_c2s,
            cipher_s2c,
        })
    }

    fn on_client_public(&mut self, payload: &[u8]) -> Result<(), Error> {
        let (ours, theirs, neg) = match std::mem::replace(&mut self.kex.phase, Phase::Idle) {
            Phase::AwaitClientPublic {
                ours, theirs, neg, ..
            } => (ours, theirs, neg),
            _ => {
                return Err(Error::Unexpected {
                    expected: "KEXINIT first",
                    got: "SSH_MSG_KEX_ECDH_INIT",
                })
            }
        };
        let q_c = msg::decode_kex_ecdh_init(payload)?;
        let out = kex::server_respond(neg.kex, q_c)
            .map_err(|_| Error::KexFailed("bad client public value"))?;
        let k_s = self.settings.host_key.public_blob();
        let v_c = self.client_ident.as_deref().unwrap_or_default();
        let h = kex::exchange_hash(
            neg.kex,
            &ExchangeHashInput {
                v_c,
                v_s: self.settings.ident.as_bytes(),
                i_c: &theirs,
                i_s: &ours,
                k_s: &k_s,
                q_c,
                q_s: &out.server_public,
                k: &out.shared_secret,
            },
        );
        let session_id = self.kex.session_id.get_or_insert_with(|| h.clone()).clone();
        let signature = self.settings.host_key.sign(&h);
        self.send_now(|o| msg::encode_kex_ecdh_reply(o, &k_s, &out.server_public, &signature));
        self.send_now(msg::encode_newkeys);

        let derive = |letter: u8, len: usize| {
            kex::derive_key(neg.kex, &out.shared_secret, &h, letter, &session_id, len)
        };
        let iv_c2s = derive(b'A', neg.cipher_c2s.iv_len());
        let iv_s2c = derive(b'B', neg.cipher_s2c.iv_len());
        let key_c2s = derive(b'C', neg.cipher_c2s.key_len());
        let key_s2c = derive(b'D', neg.cipher_s2c.key_len());
        let sealing = SealingKey::new(neg.cipher_s2c, &key_s2c, &iv_s2c)
            .map_err(|_| Error::Internal("sealing key setup"))?;
        let opening = OpeningKey::new(neg.cipher_c2s, &key_c2s, &iv_c2s)
            .map_err(|_| Error::Internal("opening key setup"))?;
        self.encoder.install_keys(sealing, self.kex.strict);
        self.kex.phase = Phase::AwaitNewKeys {
            opening: Box::new(opening),
            neg,
        };
        if !self.kex.first_done && self.kex.client_ext_info {
            self.send_now(|o| msg::encode_ext_info(o, &[("server-sig-algs", SERVER_SIG_ALGS)]));
        }
        self.flush_held();
        Ok(())
    }

    fn on_client_newkeys(&mut self, payload: &[u8]) -> Result<Option<RawEvent>, Error> {
        msg::decode_empty(payload)?;
        let (opening, neg) = match std::mem::replace(&mut self.kex.phase, Phase::Idle) {
            Phase::AwaitNewKeys { opening, neg } => (opening, neg),
            _ => {
                return Err(Error::Unexpected {
                    expected: "key exchange reply first",
                    got: "SSH_MSG_NEWKEYS",
                })
            }
        };
        self.decoder.install_keys(*opening, self.kex.strict);
        let first = !self.kex.first_done;
        self.kex.first_done = true;
        self.kex.keys_since = self.now;
        Ok(Some(RawEvent::Owned(Event::KexComplete {
            kex: neg.kex,
            cipher: neg.cipher_s2c,
            first,
        })))
    }
}
