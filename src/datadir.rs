//! The data directory: created on first start, holding the SSH host key
//! (`ssh_host_ed25519_key`, OpenSSH format, mode 0600, plus its `.pub`), the accounts
//! (`accounts/`, mode 0700) and the per-user game files (`users/`, owned by `run_as`).
//!
//! The directory itself is mode 0711: games, which run as an unprivileged user, must be able
//! to pass through it to their own files, but not list it.

use crate::ssh::hostkey::HostKey;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// File name of the host key inside the data directory.
pub const HOST_KEY_FILE: &str = "ssh_host_ed25519_key";

/// Where the account store lives.
pub fn accounts_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("accounts")
}

/// Create the data directory if missing.
pub fn ensure(data_dir: &Path) -> std::io::Result<()> {
    if !data_dir.exists() {
        fs::create_dir_all(data_dir)?;
        fs::set_permissions(data_dir, fs::Permissions::from_mode(0o711))?;
    }
    Ok(())
}

/// Load the host key, or create it on first start.
pub fn load_or_create_host_key(data_dir: &Path) -> Result<HostKey, String> {
    let path = data_dir.join(HOST_KEY_FILE);
    if path.exists() {
        return read_host_key(&path);
    }
    let mut key = HostKey::generate().map_err(|e| format!("cannot generate a host key: {e}"))?;
    key.set_comment("dungeongate host key");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("cannot create host key {}: {e}", path.display()))?;
    f.write_all(key.to_openssh_private().as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot write host key {}: {e}", path.display()))?;
    let pub_path = data_dir.join(format!("{HOST_KEY_FILE}.pub"));
    fs::write(&pub_path, format!("{}\n", key.openssh_public_line()))
        .map_err(|e| format!("cannot write {}: {e}", pub_path.display()))?;
    tracing::info!(fingerprint = %key.fingerprint_sha256(), "created a new host key");
    Ok(key)
}

/// Read the host key at `path` (the data directory's [`HOST_KEY_FILE`]).
pub fn read_host_key(path: &Path) -> Result<HostKey, String> {
    let text = fs::read_to_string(path)
        .map_err(|e| format!("cannot read host key {}: {e}", path.display()))?;
    HostKey::from_openssh_private(&text)
        .map_err(|e| format!("host key {} is not usable: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_key_is_created_once_with_mode_0600_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_host_key(dir.path()).unwrap();
        let mode = fs::metadata(dir.path().join(HOST_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = load_or_create_host_key(dir.path()).unwrap();
        assert_eq!(a.fingerprint_sha256(), b.fingerprint_sha256());
    }
}
