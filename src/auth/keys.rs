//! OpenSSH `authorized_keys`-style public key lines (`type base64 [comment]`, sshd(8)
//! "AUTHORIZED_KEYS FILE FORMAT" without options) and their SHA-256 fingerprints.
//!
//! The base64 part is the SSH wire-format public key blob (RFC 4253 §6.6): `string type`
//! followed by the type's fields — ssh-ed25519 (RFC 8709 §4), ecdsa-sha2-nistp256 (RFC 5656
//! §3.1), ssh-rsa (RFC 4253 §6.6). The `ssh-key` crate decodes the blob field by field
//! (canonical mpints, no trailing bytes); this module adds the server's policy on top (which
//! types, uncompressed P-256 points, RSA sizes) so the store only ever holds keys the SSH
//! layer can compare and verify against. Splitting the line into words stays here: it is
//! more forgiving than `ssh-key`'s (any run of whitespace, CR LF) and tells the player which
//! part of a pasted line is wrong.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use ssh_key::public::KeyData;
use ssh_key::{Fingerprint, PublicKey};
use thiserror::Error;

use super::account::AuthorizedKey;
use super::now_unix;

/// Longest accepted key line in bytes (a 16384-bit RSA key line is ~2.8 KiB).
pub const MAX_KEY_LINE_LEN: usize = 16 * 1024;
/// Smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits: the SSH layer (ring) verifies 2048 to 8192 bits, so
/// a larger key could be stored but never log in.
const MAX_RSA_BITS: usize = 8192;
/// Longest comment kept, in bytes (longer ones are cut at a character boundary).
const MAX_COMMENT_LEN: usize = 256;
/// Key types accepted.
const SUPPORTED: &[&str] = &["ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"];

/// Why a key line was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    /// Line longer than [`MAX_KEY_LINE_LEN`].
    #[error("key line too long (at most {MAX_KEY_LINE_LEN} bytes)")]
    TooLong,
    /// Nothing but whitespace (or a `#` comment).
    #[error("no key found: expected 'TYPE BASE64 [COMMENT]'")]
    Empty,
    /// A private key file (its `-----BEGIN … PRIVATE KEY-----` line) instead of a public one.
    #[error("that is a private key: give the public key (the .pub file), and never share the private one")]
    PrivateKey,
    /// The first word is not a key type we accept (also the case for option-prefixed lines).
    #[error("unsupported key type '{0}': use ssh-ed25519, ecdsa-sha2-nistp256 or ssh-rsa")]
    UnsupportedType(String),
    /// Type given but no base64 blob after it.
    #[error("key line has no base64 key data after the type")]
    MissingData,
    /// The second word is not valid base64.
    #[error("key data is not valid base64")]
    BadBase64,
    /// The blob's own type string differs from the line's type word.
    #[error("key data is of type '{blob}' but the line says '{line}'")]
    TypeMismatch {
        /// Type word from the line.
        line: String,
        /// Type string inside the blob.
        blob: String,
    },
    /// The blob's fields do not have the shape its type requires.
    #[error("malformed {key_type} key: {what}")]
    Malformed {
        /// Key type being parsed.
        key_type: &'static str,
        /// What was wrong.
        what: &'static str,
    },
    /// RSA modulus below [`MIN_RSA_BITS`].
    #[error("RSA key too small ({0} bits; at least {MIN_RSA_BITS} required)")]
    RsaTooSmall(usize),
    /// RSA modulus above [`MAX_RSA_BITS`].
    #[error("RSA key too large ({0} bits; at most {MAX_RSA_BITS} accepted)")]
    RsaTooLarge(usize),
}

/// Parses one OpenSSH public key line (`ssh-keygen` `.pub` file contents) into an
/// [`AuthorizedKey`] stamped with the current time. Leading/trailing whitespace is ignored;
/// control characters in the comment are replaced by `?`.
pub fn parse_authorized_key(line: &str) -> Result<AuthorizedKey, KeyError> {
    let mut key = parse_public_key_line(line)?;
    key.added_unix = now_unix();
    Ok(key)
}

/// [`parse_authorized_key`] without the time stamp (`added_unix` is 0), for callers with no
/// clock of their own (the lobby checks a pasted line before sending it; the store job
/// stamps it).
pub fn parse_public_key_line(line: &str) -> Result<AuthorizedKey, KeyError> {
    if line.len() > MAX_KEY_LINE_LEN {
        return Err(KeyError::TooLong);
    }
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Err(KeyError::Empty);
    }
    if line.starts_with("-----BEGIN") && line.contains("PRIVATE KEY") {
        return Err(KeyError::PrivateKey);
    }
    let (type_word, rest) = split_word(line);
    if !SUPPORTED.contains(&type_word) {
        return Err(KeyError::UnsupportedType(printable(type_word)));
    }
    let (b64, comment) = split_word(rest);
    if b64.is_empty() {
        return Err(KeyError::MissingData);
    }
    let blob = STANDARD.decode(b64).map_err(|_| KeyError::BadBase64)?;
    let mut key = key_from_blob(&blob, Some(type_word))?;
    key.comment = clean_comment(comment);
    Ok(key)
}

/// An SSH wire-format public key blob (as a client offers it during authentication) checked
/// like a key line's: a supported, well-formed key, with no comment and `added_unix` 0.
pub fn authorized_key_from_blob(blob: &[u8]) -> Result<AuthorizedKey, KeyError> {
    key_from_blob(blob, None)
}

/// OpenSSH-style fingerprint: `SHA256:` + unpadded base64 of SHA-256(blob).
///
/// Takes the raw blob (stored records and offered keys are blobs, and the hash is defined
/// over exactly those bytes); `ssh-key` formats it as `ssh-keygen -l` prints it.
pub fn key_fingerprint(blob: &[u8]) -> String {
    Fingerprint::Sha256(Sha256::digest(blob).into()).to_string()
}

/// Decodes `blob` with `ssh-key` and applies the server's policy. `line_type`: the type word
/// of the line it came from, which the blob must agree with.
fn key_from_blob(blob: &[u8], line_type: Option<&str>) -> Result<AuthorizedKey, KeyError> {
    let blob_type = peek_type(blob);
    // The type the line names, else the one the blob names (if we support it), for messages.
    let key_type = SUPPORTED
        .iter()
        .copied()
        .find(|t| Some(*t) == line_type.or(blob_type.as_deref()));
    let Some(key_type) = key_type else {
        let named = blob_type.unwrap_or_default();
        return Err(KeyError::UnsupportedType(printable(&named)));
    };
    if let Some(inner) = blob_type.as_deref().filter(|t| *t != key_type) {
        return Err(KeyError::TypeMismatch {
            line: key_type.to_owned(),
            blob: printable(inner),
        });
    }
    let malformed = |what| KeyError::Malformed { key_type, what };
    let public = PublicKey::from_bytes(blob).map_err(|e| malformed(decode_problem(&e)))?;
    if public.algorithm().as_str() != key_type {
        // `peek_type` and ssh-key read the same field; disagreement means a damaged blob.
        return Err(malformed("type field does not decode"));
    }
    match public.key_data() {
        KeyData::Ed25519(_) => {}
        KeyData::Ecdsa(point) => {
            // SEC1 also allows compressed points; the SSH layer (ring) takes uncompressed.
            let q = point.as_sec1_bytes();
            if q.len() != 65 || q.first() != Some(&4) {
                return Err(malformed("point is not an uncompressed P-256 point"));
            }
        }
        KeyData::Rsa(rsa) => {
            if !positive_mpint(rsa.e.as_bytes()) || !positive_mpint(rsa.n.as_bytes()) {
                return Err(malformed("exponent or modulus is not a positive mpint"));
            }
            let bits = mpint_bits(rsa.n.as_bytes());
            if bits < MIN_RSA_BITS {
                return Err(KeyError::RsaTooSmall(bits));
            }
            if bits > MAX_RSA_BITS {
                return Err(KeyError::RsaTooLarge(bits));
            }
        }
        _ => return Err(malformed("unexpected key data")),
    }
    Ok(AuthorizedKey {
        key_type: key_type.to_owned(),
        blob: blob.to_vec(),
        comment: String::new(),
        added_unix: 0,
    })
}

/// The type string at the start of a blob, if it has one (for messages about a mismatch;
/// the blob itself is decoded by `ssh-key`).
fn peek_type(blob: &[u8]) -> Option<String> {
    let (len, rest) = blob.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
    let name = rest.get(..len)?;
    Some(String::from_utf8_lossy(name).into_owned())
}

/// A short description of why `ssh-key` could not decode a blob.
fn decode_problem(e: &ssh_key::Error) -> &'static str {
    match e {
        ssh_key::Error::TrailingData { .. } => "trailing bytes after the key",
        // ssh-key's encoding errors (its `ssh-encoding` crate) are, for a blob, lengths that
        // do not fit: a field cut short or of the wrong size.
        ssh_key::Error::Encoding(_) => "a field is truncated or has the wrong length",
        ssh_key::Error::Ecdsa(_) => "point is not a valid SEC1 P-256 point",
        ssh_key::Error::FormatEncoding => "integer is not minimally encoded",
        _ => "key data does not decode",
    }
}

/// Splits off the first whitespace-delimited word; returns (word, rest trimmed).
fn split_word(s: &str) -> (&str, &str) {
    match s.find(char::is_whitespace) {
        Some(i) => {
            let (w, rest) = s.split_at(i);
            (w, rest.trim())
        }
        None => (s, ""),
    }
}

/// A shortened, escaped form of untrusted text for error messages.
fn printable(s: &str) -> String {
    s.chars().take(40).flat_map(char::escape_debug).collect()
}

/// The comment with control characters replaced and its length capped.
fn clean_comment(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if out.len() + c.len_utf8() > MAX_COMMENT_LEN {
            break;
        }
        out.push(if c.is_control() { '?' } else { c });
    }
    out
}

/// RFC 4251 §5 mpint that is non-zero and non-negative, minimally encoded.
fn positive_mpint(v: &[u8]) -> bool {
    match v {
        [] => false,
        [first, ..] if first & 0x80 != 0 => false,
        [0, second, ..] => second & 0x80 != 0,
        [0] => false,
        _ => true,
    }
}

/// Bit length of a positive mpint.
fn mpint_bits(v: &[u8]) -> usize {
    let v = match v.iter().position(|b| *b != 0) {
        Some(i) => v.get(i..).unwrap_or(&[]),
        None => return 0,
    };
    let top = v.first().copied().unwrap_or(0);
    v.len().saturating_sub(1) * 8 + (8 - top.leading_zeros() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Runs `ssh-keygen` to make a fresh key of `args` and returns its `.pub` line.
    fn keygen(args: &[&str]) -> String {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "dg-auth-keygen-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("k");
        let out = Command::new("ssh-keygen")
            .args(args)
            .args(["-q", "-N", "", "-C", "tester@host", "-f"])
            .arg(&path)
            .output()
            .expect("ssh-keygen is installed");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = std::fs::read_to_string(path.with_extension("pub")).unwrap();
        let fp = Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f"])
            .arg(path.with_extension("pub"))
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        // Returns "line\nFINGERPRINT"
        let fp = String::from_utf8_lossy(&fp.stdout);
        let fp = fp.split_whitespace().nth(1).unwrap_or_default().to_owned();
        format!("{}\n{fp}", line.trim_end())
    }

    fn check_generated(args: &[&str], key_type: &str) {
        let both = keygen(args);
        let (line, fp) = both.split_once('\n').unwrap();
        let key = parse_authorized_key(line).unwrap();
        assert_eq!(key.key_type, key_type);
        assert_eq!(key.comment, "tester@host");
        assert_eq!(
            key_fingerprint(&key.blob),
            fp,
            "fingerprint matches ssh-keygen -l"
        );
        // Without comment and with a trailing newline it parses to the same blob.
        let bare: Vec<&str> = line.split_whitespace().take(2).collect();
        let again = parse_authorized_key(&format!("{}\r\n", bare.join(" "))).unwrap();
        assert_eq!(again.blob, key.blob);
        assert_eq!(again.comment, "");
    }

    #[test]
    fn ssh_keygen_ed25519_line_is_accepted() {
        check_generated(&["-t", "ed25519"], "ssh-ed25519");
    }

    #[test]
    fn ssh_keygen_ecdsa_p256_line_is_accepted() {
        check_generated(&["-t", "ecdsa", "-b", "256"], "ecdsa-sha2-nistp256");
    }

    #[test]
    fn ssh_keygen_rsa_line_is_accepted() {
        check_generated(&["-t", "rsa", "-b", "2048"], "ssh-rsa");
    }

    #[test]
    fn ssh_keygen_ecdsa_p384_line_is_refused_with_a_clear_message() {
        let both = keygen(&["-t", "ecdsa", "-b", "384"]);
        let line = both.lines().next().unwrap();
        let err = parse_authorized_key(line).unwrap_err();
        assert_eq!(err, KeyError::UnsupportedType("ecdsa-sha2-nistp384".into()));
        assert!(err.to_string().contains("use ssh-ed25519"));
    }

    #[test]
    fn small_rsa_key_is_refused() {
        let both = keygen(&["-t", "rsa", "-b", "1024"]);
        let line = both.lines().next().unwrap();
        assert_eq!(parse_authorized_key(line), Err(KeyError::RsaTooSmall(1024)));
    }

    #[test]
    fn line_type_that_disagrees_with_the_blob_is_refused() {
        let both = keygen(&["-t", "ed25519"]);
        let line = both.lines().next().unwrap();
        let swapped = line.replacen("ssh-ed25519", "ssh-rsa", 1);
        assert!(matches!(
            parse_authorized_key(&swapped),
            Err(KeyError::TypeMismatch { .. })
        ));
    }

    #[test]
    fn garbage_lines_are_refused() {
        let ed_blob = {
            let mut b = Vec::new();
            b.extend_from_slice(&11u32.to_be_bytes());
            b.extend_from_slice(b"ssh-ed25519");
            b.extend_from_slice(&32u32.to_be_bytes());
            b.extend_from_slice(&[7u8; 32]);
            b
        };
        let good = format!("ssh-ed25519 {}", STANDARD.encode(&ed_blob));
        assert!(parse_authorized_key(&good).is_ok(), "control case parses");

        let mut short = ed_blob.clone();
        short.pop();
        let mut trailing = ed_blob.clone();
        trailing.push(0);
        /// A line and a predicate its error must satisfy.
        type Case = (String, fn(&KeyError) -> bool);
        let cases: Vec<Case> = vec![
            (String::new(), |e| *e == KeyError::Empty),
            ("   \n".into(), |e| *e == KeyError::Empty),
            ("# comment".into(), |e| *e == KeyError::Empty),
            ("ssh-ed25519".into(), |e| *e == KeyError::MissingData),
            ("ssh-ed25519 !!!notbase64!!!".into(), |e| {
                *e == KeyError::BadBase64
            }),
            ("ssh-dss AAAAB3NzaC1kc3M= x".into(), |e| {
                matches!(e, KeyError::UnsupportedType(_))
            }),
            (format!("no-pty {good}"), |e| {
                matches!(e, KeyError::UnsupportedType(_))
            }),
            (format!("ssh-ed25519 {}", STANDARD.encode(&short)), |e| {
                matches!(e, KeyError::Malformed { .. })
            }),
            (format!("ssh-ed25519 {}", STANDARD.encode(&trailing)), |e| {
                matches!(e, KeyError::Malformed { .. })
            }),
            ("ssh-ed25519 AAAA".into(), |e| {
                matches!(e, KeyError::Malformed { .. })
            }),
            (format!("{good} {}", "x".repeat(MAX_KEY_LINE_LEN)), |e| {
                *e == KeyError::TooLong
            }),
        ];
        for (line, ok) in cases {
            let got = parse_authorized_key(&line);
            match got {
                Err(ref e) if ok(e) => {}
                other => panic!("line {:?}: got {other:?}", line.get(..60)),
            }
        }
    }

    #[test]
    fn control_characters_in_comments_are_neutralised() {
        let both = keygen(&["-t", "ed25519"]);
        let line = both.lines().next().unwrap();
        let bare: Vec<&str> = line.split_whitespace().take(2).collect();
        let key = parse_authorized_key(&format!("{} evil\x1b[2Jcomment", bare.join(" "))).unwrap();
        assert_eq!(key.comment, "evil?[2Jcomment");
    }

    /// A wire blob of `strings`, each length-prefixed.
    fn blob_of(strings: &[&[u8]]) -> Vec<u8> {
        let mut b = Vec::new();
        for s in strings {
            b.extend_from_slice(&u32::try_from(s.len()).unwrap().to_be_bytes());
            b.extend_from_slice(s);
        }
        b
    }

    #[test]
    fn a_pasted_private_key_is_refused_as_one() {
        for line in [
            "-----BEGIN OPENSSH PRIVATE KEY-----",
            "  -----BEGIN RSA PRIVATE KEY-----\r\n",
            "-----BEGIN PRIVATE KEY-----",
        ] {
            assert_eq!(
                parse_public_key_line(line),
                Err(KeyError::PrivateKey),
                "{line}"
            );
        }
        assert!(KeyError::PrivateKey.to_string().contains("public key"));
    }

    #[test]
    fn ecdsa_points_the_ssh_layer_cannot_use_are_refused() {
        let mut compressed = vec![2u8];
        compressed.extend_from_slice(&[1u8; 32]);
        let blob = blob_of(&[b"ecdsa-sha2-nistp256", b"nistp256", &compressed]);
        let line = format!("ecdsa-sha2-nistp256 {}", STANDARD.encode(&blob));
        assert!(matches!(
            parse_public_key_line(&line),
            Err(KeyError::Malformed { .. })
        ));
        // The curve name inside must be P-256's too.
        let mut point = vec![4u8];
        point.extend_from_slice(&[1u8; 64]);
        let blob = blob_of(&[b"ecdsa-sha2-nistp256", b"nistp384", &point]);
        let line = format!("ecdsa-sha2-nistp256 {}", STANDARD.encode(&blob));
        assert!(parse_public_key_line(&line).is_err());
    }

    #[test]
    fn rsa_keys_larger_than_the_ssh_layer_verifies_are_refused() {
        let mut n = vec![0x7fu8];
        n.extend_from_slice(&[0xffu8; 1024]); // 8199 bits
        let blob = blob_of(&[b"ssh-rsa", &[1, 0, 1], &n]);
        let line = format!("ssh-rsa {}", STANDARD.encode(&blob));
        assert_eq!(
            parse_public_key_line(&line),
            Err(KeyError::RsaTooLarge(8199))
        );
        // A non-minimal mpint (a leading zero the value does not need) does not decode.
        let mut padded = vec![0u8];
        padded.extend_from_slice(&n[..256]);
        let blob = blob_of(&[b"ssh-rsa", &[1, 0, 1], &padded]);
        let line = format!("ssh-rsa {}", STANDARD.encode(&blob));
        assert!(matches!(
            parse_public_key_line(&line),
            Err(KeyError::Malformed { .. })
        ));
    }

    #[test]
    fn an_offered_blob_is_checked_like_a_line_and_keeps_its_bytes() {
        let both = keygen(&["-t", "ed25519"]);
        let line = both.lines().next().unwrap();
        let from_line = parse_public_key_line(line).unwrap();
        assert_eq!(from_line.added_unix, 0, "no clock in the pure parser");
        let from_blob = authorized_key_from_blob(&from_line.blob).unwrap();
        assert_eq!(from_blob.blob, from_line.blob);
        assert_eq!(from_blob.key_type, "ssh-ed25519");
        assert_eq!(from_blob.comment, "");
        let dss = blob_of(&[b"ssh-dss", &[1], &[1], &[1], &[1]]);
        assert_eq!(
            authorized_key_from_blob(&dss),
            Err(KeyError::UnsupportedType("ssh-dss".into()))
        );
        assert!(authorized_key_from_blob(&[]).is_err());
        assert!(authorized_key_from_blob(&from_line.blob[..20]).is_err());
    }

    #[test]
    fn fingerprint_matches_a_known_vector() {
        // SHA-256("") is e3b0c442…; base64 without padding.
        assert_eq!(
            key_fingerprint(b""),
            "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"
        );
    }

    #[test]
    fn mpint_helpers_follow_rfc4251() {
        assert!(positive_mpint(&[0x01]));
        assert!(positive_mpint(&[0x00, 0x80]));
        assert!(!positive_mpint(&[]));
        assert!(!positive_mpint(&[0x80]));
        assert!(!positive_mpint(&[0x00, 0x01]));
        assert!(!positive_mpint(&[0x00]));
        assert_eq!(mpint_bits(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(mpint_bits(&[0x01]), 1);
    }
}
