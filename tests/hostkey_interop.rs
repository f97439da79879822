//! Host key files against the real `ssh-keygen`: it reads the files we write, we read the
//! files it writes, and we refuse what we must. (File access lives here, not in `src/ssh/`,
//! which stays free of I/O.)

use dungeongate::ssh::hostkey::{HostKey, HostKeyError};
use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

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
