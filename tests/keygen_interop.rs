//! Our key handling against the real `ssh-keygen`: host key files both ways, user public
//! key lines, and signatures it makes (`-Y sign`) verified by our code. File access lives
//! here, not in `src/ssh/`, which stays free of I/O.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use dungeongate::ssh::hostkey::{HostKey, HostKeyError};
use dungeongate::ssh::pubkey::{
    check_alg_matches_blob, fingerprint_sha256, parse_authorized_key_line, verify, PubkeyError,
    UserKeyAlg,
};
use dungeongate::ssh::wire::{self, Reader};
use ring::rand::SystemRandom;
use ring::signature::{self, RsaKeyPair};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

/// An SSH signature blob: string algorithm || string signature.
fn sig_blob(name: &str, sig: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    wire::put_string(&mut b, name.as_bytes());
    wire::put_string(&mut b, sig);
    b
}

fn ssh_keygen(args: &[&str]) -> String {
    let out = Command::new("ssh-keygen")
        .args(args)
        .output()
        .expect("ssh-keygen (openssh-client) must be installed for these tests");
    assert!(
        out.status.success(),
        "ssh-keygen {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn ssh_keygen_reads_our_private_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("host_ed25519");
    let mut key = HostKey::generate().unwrap();
    key.set_comment("dungeongate@test");
    std::fs::write(&path, key.to_openssh_private().as_bytes()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let line = ssh_keygen(&["-y", "-f", path.to_str().unwrap()]);
    assert_eq!(line.trim(), key.openssh_public_line());
}

/// A host key file written by the hand-written encoder that came before `ssh-key` (kept as
/// a fixture: a test-only key, never a real server's). Servers already deployed have files
/// like it in their data directory, and must keep their identity after an upgrade.
#[test]
fn a_host_key_file_written_by_the_earlier_encoder_still_loads_with_the_same_identity() {
    let text = include_str!("fixtures/host_ed25519_old_writer");
    let pub_line = include_str!("fixtures/host_ed25519_old_writer.pub");
    let key = HostKey::from_openssh_private(text).unwrap();
    assert_eq!(key.openssh_public_line(), pub_line.trim());
    assert_eq!(key.comment(), "dungeongate@old-writer");
    assert_eq!(
        key.fingerprint_sha256(),
        "SHA256:tHLPeipfX24srTFY7UZwAiT6RR+Wp7HJBaYyc+5Nr7g"
    );
    // Ed25519 signatures are deterministic: the same seed was loaded.
    assert_eq!(
        STANDARD.encode(key.sign(b"fixture")),
        "AAAAC3NzaC1lZDI1NTE5AAAAQC1YxEKYR3AhKPDmh1Y/AAEpeuB9Sw3KfApXlurYluxtJiMLURkf3pdsqLHeXYgW42G8W1i8MATfzPC3pH8dEAM="
    );
    // Written back out by the new encoder, it loads to the same key again.
    let again = HostKey::from_openssh_private(&key.to_openssh_private()).unwrap();
    assert_eq!(again.sign(b"fixture"), key.sign(b"fixture"));
    assert_eq!(again.comment(), key.comment());
    // CR LF line ends and other wrapping widths load too (the armour ignores whitespace).
    let crlf = text.replace('\n', "\r\n");
    assert_eq!(
        HostKey::from_openssh_private(&crlf).unwrap().public_blob(),
        key.public_blob()
    );
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let rewrapped: Vec<String> = body
        .as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    let rewrapped = format!(
        "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
        rewrapped.join("\n")
    );
    assert_eq!(
        HostKey::from_openssh_private(&rewrapped)
            .unwrap()
            .public_blob(),
        key.public_blob()
    );
}

#[test]
fn we_read_a_key_file_written_by_ssh_keygen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k");
    let p = path.to_str().unwrap();
    ssh_keygen(&[
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-C",
        "made by keygen",
        "-f",
        p,
    ]);
    let key = HostKey::from_openssh_private(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let pub_line = std::fs::read_to_string(dir.path().join("k.pub")).unwrap();
    assert_eq!(key.openssh_public_line(), pub_line.trim());
    assert_eq!(key.comment(), "made by keygen");
    let listed = ssh_keygen(&["-l", "-E", "sha256", "-f", p]);
    assert!(
        listed.contains(&format!(" {} ", key.fingerprint_sha256())),
        "{listed} vs {}",
        key.fingerprint_sha256()
    );
}

#[test]
fn an_encrypted_key_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k");
    let p = path.to_str().unwrap();
    ssh_keygen(&["-q", "-t", "ed25519", "-N", "secret pass", "-f", p]);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        HostKey::from_openssh_private(&text).err(),
        Some(HostKeyError::Encrypted)
    );
}

#[test]
fn a_non_ed25519_key_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k");
    let p = path.to_str().unwrap();
    ssh_keygen(&["-q", "-t", "ecdsa", "-b", "256", "-N", "", "-f", p]);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(matches!(
        HostKey::from_openssh_private(&text),
        Err(HostKeyError::UnsupportedKeyType(t)) if t == "ecdsa-sha2-nistp256"
    ));
}

/// Sign `data` with `ssh-keygen -Y sign` and return (key blob, signature blob, signed
/// data) by unwrapping the SSHSIG envelope (OpenSSH PROTOCOL.sshsig).
fn sign_with_ssh_keygen(dir: &Path, key: &Path, data: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let msg = dir.join("msg");
    std::fs::write(&msg, data).unwrap();
    ssh_keygen(&[
        "-q",
        "-Y",
        "sign",
        "-n",
        "test",
        "-f",
        key.to_str().unwrap(),
        msg.to_str().unwrap(),
    ]);
    let armored = std::fs::read_to_string(dir.join("msg.sig")).unwrap();
    std::fs::remove_file(dir.join("msg.sig")).unwrap();
    let b64: String = armored
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let raw = STANDARD.decode(b64).unwrap();
    let mut r = Reader::new(&raw);
    assert_eq!(r.bytes(6, "magic").unwrap(), b"SSHSIG");
    assert_eq!(r.u32().unwrap(), 1);
    let key_blob = r.string().unwrap().to_vec();
    let namespace = r.string().unwrap();
    let reserved = r.string().unwrap();
    let hash_alg = r.string().unwrap();
    let sig = r.string().unwrap().to_vec();
    r.finish().unwrap();
    assert_eq!(hash_alg, b"sha512");
    let mut signed = b"SSHSIG".to_vec();
    wire::put_string(&mut signed, namespace);
    wire::put_string(&mut signed, reserved);
    wire::put_string(&mut signed, hash_alg);
    wire::put_string(
        &mut signed,
        ring::digest::digest(&ring::digest::SHA512, data).as_ref(),
    );
    (key_blob, sig, signed)
}

#[test]
fn signatures_made_by_ssh_keygen_verify_for_every_key_type() {
    let dir = tempfile::tempdir().unwrap();
    let mut blobs = Vec::new();
    for (kind, bits, alg) in [
        ("ed25519", "256", UserKeyAlg::Ed25519),
        ("ecdsa", "256", UserKeyAlg::EcdsaP256),
        ("rsa", "3072", UserKeyAlg::RsaSha512),
    ] {
        let key = dir.path().join(kind);
        let k = key.to_str().unwrap();
        ssh_keygen(&[
            "-q", "-t", kind, "-b", bits, "-N", "", "-C", "me@there", "-f", k,
        ]);
        let pub_line = std::fs::read_to_string(format!("{k}.pub")).unwrap();
        let (key_type, blob, comment) = parse_authorized_key_line(&pub_line).unwrap();
        assert_eq!(key_type, alg.key_type());
        assert_eq!(comment, "me@there");
        let listed = ssh_keygen(&["-l", "-E", "sha256", "-f", &format!("{k}.pub")]);
        assert!(listed.contains(&fingerprint_sha256(&blob)), "{listed}");

        let (sig_key, sig, signed) = sign_with_ssh_keygen(dir.path(), &key, b"play nethack");
        assert_eq!(sig_key, blob);
        let sig_name = Reader::new(&sig).utf8().unwrap().to_owned();
        assert_eq!(check_alg_matches_blob(&sig_name, &blob), Ok(alg));
        verify(alg, &blob, &sig, &signed).unwrap();
        let mut tampered = signed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(
            verify(alg, &blob, &sig, &tampered),
            Err(PubkeyError::BadSignature)
        );
        blobs.push((alg, blob, sig, signed));
    }
    // A signature never verifies against another key of another type.
    for (i, (alg, _, sig, signed)) in blobs.iter().enumerate() {
        for (j, (_, other, _, _)) in blobs.iter().enumerate() {
            if i != j {
                assert!(verify(*alg, other, sig, signed).is_err());
            }
        }
    }
}

#[test]
fn rsa_sha256_signature_verifies_and_is_not_accepted_as_sha512() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("rsa");
    let k = key.to_str().unwrap();
    ssh_keygen(&[
        "-q", "-t", "rsa", "-b", "2048", "-m", "PKCS8", "-N", "", "-f", k,
    ]);
    let pem = std::fs::read_to_string(&key).unwrap();
    let der = STANDARD
        .decode(
            pem.lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap();
    let kp = RsaKeyPair::from_pkcs8(&der).unwrap();
    let (_, blob, _) =
        parse_authorized_key_line(&std::fs::read_to_string(format!("{k}.pub")).unwrap()).unwrap();
    let mut sig = vec![0; kp.public().modulus_len()];
    kp.sign(
        &signature::RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        b"data",
        &mut sig,
    )
    .unwrap();
    let blob256 = sig_blob("rsa-sha2-256", &sig);
    verify(UserKeyAlg::RsaSha256, &blob, &blob256, b"data").unwrap();
    assert_eq!(
        verify(UserKeyAlg::RsaSha256, &blob, &blob256, b"dat4"),
        Err(PubkeyError::BadSignature)
    );
    let blob512 = sig_blob("rsa-sha2-512", &sig);
    assert_eq!(
        verify(UserKeyAlg::RsaSha512, &blob, &blob512, b"data"),
        Err(PubkeyError::BadSignature)
    );
}

#[test]
fn rsa_keys_under_2048_bits_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let k = dir.path().join("small");
    let k = k.to_str().unwrap();
    ssh_keygen(&["-q", "-t", "rsa", "-b", "1024", "-N", "", "-f", k]);
    let line = std::fs::read_to_string(format!("{k}.pub")).unwrap();
    assert_eq!(
        parse_authorized_key_line(&line),
        Err(PubkeyError::RsaKeySize(1024))
    );
}
