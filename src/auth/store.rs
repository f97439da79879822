//! The account store: one LMDB environment (via heed) holding an `accounts` database keyed by
//! the lowercase account name, with one JSON [`Account`] record per key.
//!
//! Multi-process use: the server and the `dungeongate user` CLI open the same directory at the
//! same time. LMDB serialises writers with a process-shared lock and gives every read
//! transaction the latest committed snapshot, so each operation here opens its own short
//! transaction and always sees the other process's committed writes. Read transactions are
//! opened without thread-local storage (`MDB_NOTLS`) so a blocking thread pool does not pin one
//! reader slot per thread.
//!
//! Within one process an LMDB environment may be opened only once (heed enforces this): open
//! the store once and clone the [`Store`] handle.

use std::convert::Infallible;
use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};

use heed::types::{Bytes, Str};
use heed::{CommitOrAbort, Database, Env, EnvOpenOptions, RoTxn, WithoutTls};
use thiserror::Error;

use super::account::Account;
use super::names::{check_name_shape, validate_name, NameError};
use super::now_unix;

/// LMDB map size: the most the data file can grow to (1 GiB ≈ millions of accounts). LMDB
/// only reserves address space; the file grows as needed.
pub const MAP_SIZE: usize = 1 << 30;
/// Named databases in the environment: `accounts` and `meta`.
const MAX_DBS: u32 = 4;
/// Name of the accounts database.
const ACCOUNTS_DB: &str = "accounts";
/// Name of the metadata database (schema version, health-check stamp).
const META_DB: &str = "meta";
/// Record-format version written to `meta`; bump on incompatible changes.
const SCHEMA_VERSION: &str = "1";

/// Everything that can go wrong with the account store.
#[derive(Debug, Error)]
pub enum AuthError {
    /// `create` with a name that is taken (case-insensitively).
    #[error("user '{0}' already exists")]
    Exists(String),
    /// No account with that name.
    #[error("user '{0}' does not exist")]
    NotFound(String),
    /// The name breaks the naming rules.
    #[error("name '{name}' is not valid: {reason}")]
    InvalidName {
        /// The refused name (escaped for display).
        name: String,
        /// Which rule it breaks.
        reason: NameError,
    },
    /// `update` tried to change the account name (only its letter case may change).
    #[error("user '{0}' cannot be renamed")]
    Rename(String),
    /// The directory could not be created or accessed.
    #[error("account store directory {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// This process already has the store open (heed/LMDB allow one handle per process).
    #[error("account store {0} is already open in this process; clone the existing Store")]
    AlreadyOpen(PathBuf),
    /// A stored record failed to decode (corruption or an incompatible newer format).
    #[error("account record '{name}' is unreadable: {source}")]
    Corrupt {
        /// The record's key.
        name: String,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// The store was written by an incompatible version.
    #[error("account store schema version '{0}' is not supported (expected {SCHEMA_VERSION})")]
    Schema(String),
    /// Any other LMDB failure (disk full, map full, I/O error, …).
    #[error("account database error: {0}")]
    Db(#[from] heed::Error),
}

/// Handle to the account store. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Store {
    /// The LMDB environment (reference-counted inside heed).
    env: Env<WithoutTls>,
    /// lowercase name → JSON account record.
    accounts: Database<'static, Str, Bytes>,
    /// Small key/value metadata: `schema`, `health`.
    meta: Database<'static, Str, Str>,
}

/// `meta` key of the last revocation number.
const REVOCATION_SEQ: &str = "revocation_seq";

/// `meta` key of revocation number `seq` (zero-padded: keys sort by number).
fn revocation_key(seq: u64) -> String {
    format!("revoked:{seq:020}")
}

impl Store {
    /// Opens (creating if needed, mode 0700) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Store, AuthError> {
        let io_err = |source| AuthError::Io {
            path: dir.to_path_buf(),
            source,
        };
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err)?;
        let mut options = EnvOpenOptions::new().read_txn_without_tls();
        options.map_size(MAP_SIZE).max_dbs(MAX_DBS);
        // SAFETY: heed's open is unsafe because the memory map must not be modified except
        // through LMDB. Only LMDB (this process and other dungeongate processes, coordinated
        // by LMDB's lock file) writes the files in `dir`; we use no unsafe env flags.
        let env = match unsafe { options.open(dir) } {
            Ok(env) => env,
            Err(heed::Error::EnvAlreadyOpened) => {
                return Err(AuthError::AlreadyOpen(dir.to_path_buf()))
            }
            Err(heed::Error::Io(e)) => return Err(io_err(e)),
            Err(e) => return Err(e.into()),
        };
        // A crashed CLI or server may have left reader slots behind; reclaim them.
        env.clear_stale_readers()?;
        let wtxn = env.write_txn()?;
        let created =
            env.create_databases_and_commit(wtxn, |opener, wtxn| -> Result<_, AuthError> {
                let accounts = opener.create_database::<Str, Bytes>(wtxn, Some(ACCOUNTS_DB))?;
                let meta = opener.create_database::<Str, Str>(wtxn, Some(META_DB))?;
                match meta.get(wtxn, "schema")? {
                    None => meta.put(wtxn, "schema", SCHEMA_VERSION)?,
                    Some(SCHEMA_VERSION) => {}
                    Some(other) => return Err(AuthError::Schema(other.to_owned())),
                }
                Ok(CommitOrAbort::<_, Infallible>::Commit((accounts, meta)))
            })?;
        let (accounts, meta) = match created {
            CommitOrAbort::Commit(dbs) => dbs,
            CommitOrAbort::Abort(never) => match never {},
        };
        Ok(Store {
            env,
            accounts,
            meta,
        })
    }

    /// Looks up an account by name, ignoring case. Names that cannot exist (wrong shape,
    /// too long) return `None` without touching the database.
    pub fn get(&self, name: &str) -> Result<Option<Account>, AuthError> {
        if check_name_shape(name).is_err() {
            return Ok(None);
        }
        let key = name.to_ascii_lowercase();
        let rtxn = self.env.read_txn()?;
        self.read(&rtxn, &key)
    }

    /// Adds a new account. Refuses invalid or reserved names and names already taken
    /// (case-insensitively).
    pub fn create(&self, account: &Account) -> Result<(), AuthError> {
        validate_name(&account.name).map_err(|reason| AuthError::InvalidName {
            name: account.name.escape_debug().to_string(),
            reason,
        })?;
        let key = account.key();
        let value = encode(account)?;
        let mut wtxn = self.env.write_txn()?;
        if self.accounts.get(&wtxn, &key)?.is_some() {
            return Err(AuthError::Exists(account.name.clone()));
        }
        self.accounts.put(&mut wtxn, &key, &value)?;
        wtxn.commit()?;
        Ok(())
    }

    /// Atomically reads, modifies (with `f`) and writes back an account in one write
    /// transaction; returns the updated account. `f` may change the name's letter case but
    /// not the name itself.
    pub fn update<F: FnOnce(&mut Account)>(&self, name: &str, f: F) -> Result<Account, AuthError> {
        if check_name_shape(name).is_err() {
            return Err(AuthError::NotFound(name.escape_debug().to_string()));
        }
        let key = name.to_ascii_lowercase();
        let mut wtxn = self.env.write_txn()?;
        let mut account = self
            .read(&wtxn, &key)?
            .ok_or_else(|| AuthError::NotFound(name.to_owned()))?;
        let (was_locked, was_admin) = (account.locked, account.admin);
        f(&mut account);
        if account.key() != key {
            return Err(AuthError::Rename(name.to_owned()));
        }
        let value = encode(&account)?;
        self.accounts.put(&mut wtxn, &key, &value)?;
        // A lock, and an admin's rights taken away, end the account's sessions: an open
        // lobby keeps what its login said (an admin menu among it) until it logs in again.
        if (account.locked && !was_locked) || (was_admin && !account.admin) {
            self.revoke(&mut wtxn, &key)?;
        }
        wtxn.commit()?;
        Ok(account)
    }

    /// Removes an account.
    pub fn delete(&self, name: &str) -> Result<(), AuthError> {
        if check_name_shape(name).is_err() {
            return Err(AuthError::NotFound(name.escape_debug().to_string()));
        }
        let key = name.to_ascii_lowercase();
        let mut wtxn = self.env.write_txn()?;
        if !self.accounts.delete(&mut wtxn, &key)? {
            return Err(AuthError::NotFound(name.to_owned()));
        }
        self.revoke(&mut wtxn, &key)?;
        wtxn.commit()?;
        Ok(())
    }

    /// Note, in the same transaction as the change, that `key`'s account was locked or
    /// deleted: a running server reads these ([`Self::revocations_since`]) and ends the
    /// account's live sessions, whichever process (the CLI, the server) made the change.
    fn revoke(&self, wtxn: &mut heed::RwTxn<'_>, key: &str) -> Result<(), AuthError> {
        let seq = self
            .meta
            .get(wtxn, REVOCATION_SEQ)?
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
            + 1;
        self.meta.put(wtxn, REVOCATION_SEQ, &seq.to_string())?;
        self.meta.put(wtxn, &revocation_key(seq), key)?;
        // Keep the last thousand: a server reads them within a second of the change.
        if let Some(old) = seq.checked_sub(1000) {
            self.meta.delete(wtxn, &revocation_key(old))?;
        }
        Ok(())
    }

    /// Accounts locked or deleted after revocation number `after`, with the latest number
    /// (pass it next time). `after = u64::MAX` asks only for the latest number.
    pub fn revocations_since(&self, after: u64) -> Result<(u64, Vec<String>), AuthError> {
        let rtxn = self.env.read_txn()?;
        let latest = self
            .meta
            .get(&rtxn, REVOCATION_SEQ)?
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
        let mut names = Vec::new();
        if after != u64::MAX {
            for seq in after.saturating_add(1).max(latest.saturating_sub(999))..=latest {
                if let Some(name) = self.meta.get(&rtxn, &revocation_key(seq))? {
                    names.push(name.to_owned());
                }
            }
        }
        Ok((latest, names))
    }

    /// All accounts, ordered by lowercase name.
    pub fn list(&self) -> Result<Vec<Account>, AuthError> {
        let rtxn = self.env.read_txn()?;
        let mut out = Vec::new();
        for item in self.accounts.iter(&rtxn)? {
            let (key, value) = item?;
            out.push(decode(key, value)?);
        }
        Ok(out)
    }

    /// Number of accounts.
    pub fn count(&self) -> Result<u64, AuthError> {
        let rtxn = self.env.read_txn()?;
        Ok(self.accounts.len(&rtxn)?)
    }

    /// Health check: commits a tiny write (a timestamp in `meta`), proving the disk and the
    /// LMDB writer lock work.
    pub fn check_writable(&self) -> Result<(), AuthError> {
        let mut wtxn = self.env.write_txn()?;
        self.meta
            .put(&mut wtxn, "health", &now_unix().to_string())?;
        wtxn.commit()?;
        Ok(())
    }

    /// The directory this store lives in.
    pub fn path(&self) -> &Path {
        self.env.path()
    }

    /// Reads and decodes one record inside an existing transaction.
    fn read(&self, txn: &RoTxn, key: &str) -> Result<Option<Account>, AuthError> {
        match self.accounts.get(txn, key)? {
            Some(bytes) => decode(key, bytes).map(Some),
            None => Ok(None),
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.env.path())
            .finish_non_exhaustive()
    }
}

/// Serialises a record to JSON.
fn encode(account: &Account) -> Result<Vec<u8>, AuthError> {
    serde_json::to_vec(account).map_err(|source| AuthError::Corrupt {
        name: account.key(),
        source,
    })
}

/// Deserialises a record from JSON.
fn decode(key: &str, bytes: &[u8]) -> Result<Account, AuthError> {
    serde_json::from_slice(bytes).map_err(|source| AuthError::Corrupt {
        name: key.escape_debug().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthorizedKey;

    /// A fresh empty directory under the system temp dir, removed on drop.
    pub(crate) struct TempDir(pub PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> TempDir {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "dg-auth-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&p);
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn acct(name: &str) -> Account {
        Account::new(name, format!("$argon2id$fake${name}"), 1_700_000_000)
    }

    #[test]
    fn locking_and_deleting_are_recorded_for_a_running_server_to_act_on() {
        let dir = TempDir::new("revoke");
        let store = Store::open(&dir.0).unwrap();
        for n in ["alice", "bob", "carol"] {
            store.create(&acct(n)).unwrap();
        }
        let (start, none) = store.revocations_since(u64::MAX).unwrap();
        assert!(none.is_empty());
        store
            .update("alice", |a| a.email = Some("a@example.org".into()))
            .unwrap();
        store.update("alice", |a| a.locked = true).unwrap();
        store.update("alice", |a| a.locked = true).unwrap(); // already locked: nothing new
        store.delete("Bob").unwrap();
        let (latest, names) = store.revocations_since(start).unwrap();
        assert_eq!(names, vec!["alice".to_string(), "bob".to_string()]);
        assert_eq!(
            store.revocations_since(latest).unwrap().1,
            Vec::<String>::new()
        );
        store.update("carol", |a| a.locked = true).unwrap();
        assert_eq!(
            store.revocations_since(latest).unwrap().1,
            vec!["carol".to_string()]
        );
    }

    #[test]
    fn taking_admin_rights_away_is_recorded_too_granting_them_is_not() {
        let dir = TempDir::new("revoke-admin");
        let store = Store::open(&dir.0).unwrap();
        store.create(&acct("dana")).unwrap();
        let (start, _) = store.revocations_since(u64::MAX).unwrap();
        store.update("dana", |a| a.admin = true).unwrap();
        assert!(store.revocations_since(start).unwrap().1.is_empty());
        store.update("dana", |a| a.admin = false).unwrap();
        assert_eq!(
            store.revocations_since(start).unwrap().1,
            vec!["dana".to_string()]
        );
    }

    #[test]
    fn created_account_can_be_read_back_by_any_case() {
        let dir = TempDir::new("crud");
        let store = Store::open(&dir.0).unwrap();
        store.create(&acct("Alice")).unwrap();
        let got = store.get("aLiCe").unwrap().unwrap();
        assert_eq!(got.name, "Alice");
        assert_eq!(got.password_phc, "$argon2id$fake$Alice");
        assert_eq!(store.get("bob").unwrap(), None);
    }

    #[test]
    fn names_are_unique_regardless_of_case() {
        let dir = TempDir::new("unique");
        let store = Store::open(&dir.0).unwrap();
        store.create(&acct("Alice")).unwrap();
        let err = store.create(&acct("ALICE")).unwrap_err();
        assert!(matches!(err, AuthError::Exists(ref n) if n == "ALICE"));
        assert_eq!(err.to_string(), "user 'ALICE' already exists");
        assert_eq!(store.count().unwrap(), 1);
    }

    #[test]
    fn create_refuses_invalid_and_reserved_names() {
        let dir = TempDir::new("invalid");
        let store = Store::open(&dir.0).unwrap();
        for bad in ["x-y", "", "guest", "Root", "1abc"] {
            let err = store.create(&acct(bad)).unwrap_err();
            assert!(matches!(err, AuthError::InvalidName { .. }), "{bad}: {err}");
        }
        assert_eq!(
            store.create(&acct("x-y")).unwrap_err().to_string(),
            "name 'x-y' is not valid: only letters and digits"
        );
        assert_eq!(store.count().unwrap(), 0);
    }

    #[test]
    fn update_modifies_atomically_and_reports_missing_users() {
        let dir = TempDir::new("update");
        let store = Store::open(&dir.0).unwrap();
        store.create(&acct("bob")).unwrap();
        let updated = store
            .update("BOB", |a| {
                a.admin = true;
                a.email = Some("bob@example.org".into());
                a.keys.push(AuthorizedKey {
                    key_type: "ssh-ed25519".into(),
                    blob: vec![1, 2, 3],
                    comment: String::new(),
                    added_unix: 5,
                });
            })
            .unwrap();
        assert!(updated.admin);
        let again = store.get("bob").unwrap().unwrap();
        assert_eq!(again, updated);
        assert!(again.has_key(&[1, 2, 3]));
        assert!(matches!(
            store.update("carol", |_| {}),
            Err(AuthError::NotFound(_))
        ));
    }

    #[test]
    fn update_may_change_case_but_not_the_name() {
        let dir = TempDir::new("rename");
        let store = Store::open(&dir.0).unwrap();
        store.create(&acct("bob")).unwrap();
        store.update("bob", |a| a.name = "Bob".into()).unwrap();
        assert_eq!(store.get("bob").unwrap().unwrap().name, "Bob");
        let err = store
            .update("bob", |a| {
                a.name = "robert".into();
                a.admin = true;
            })
            .unwrap_err();
        assert!(matches!(err, AuthError::Rename(_)));
        let still = store.get("bob").unwrap().unwrap();
        assert!(!still.admin, "a refused update writes nothing");
        assert_eq!(store.get("robert").unwrap(), None);
    }

    #[test]
    fn delete_removes_and_then_reports_not_found() {
        let dir = TempDir::new("delete");
        let store = Store::open(&dir.0).unwrap();
        store.create(&acct("bob")).unwrap();
        store.delete("Bob").unwrap();
        assert_eq!(store.get("bob").unwrap(), None);
        assert!(matches!(store.delete("bob"), Err(AuthError::NotFound(_))));
        assert!(matches!(store.delete("x-y"), Err(AuthError::NotFound(_))));
        store.create(&acct("bob")).unwrap();
    }

    #[test]
    fn list_returns_all_accounts_sorted_and_count_agrees() {
        let dir = TempDir::new("list");
        let store = Store::open(&dir.0).unwrap();
        for n in ["carol", "Alice", "bob"] {
            store.create(&acct(n)).unwrap();
        }
        let names: Vec<String> = store.list().unwrap().into_iter().map(|a| a.name).collect();
        assert_eq!(names, ["Alice", "bob", "carol"]);
        assert_eq!(store.count().unwrap(), 3);
    }

    #[test]
    fn lookups_of_impossible_names_return_none() {
        let dir = TempDir::new("impossible");
        let store = Store::open(&dir.0).unwrap();
        assert_eq!(store.get(&"a".repeat(10_000)).unwrap(), None);
        assert_eq!(store.get("").unwrap(), None);
        assert_eq!(store.get("a\0b").unwrap(), None);
    }

    #[test]
    fn accounts_survive_reopening_the_store() {
        let dir = TempDir::new("reopen");
        {
            let store = Store::open(&dir.0).unwrap();
            store.create(&acct("dave")).unwrap();
            store.check_writable().unwrap();
        }
        let store = Store::open(&dir.0).unwrap();
        assert!(store.get("dave").unwrap().is_some());
    }

    #[test]
    fn second_open_in_the_same_process_is_refused_clearly() {
        let dir = TempDir::new("twice");
        let store = Store::open(&dir.0).unwrap();
        let clone = store.clone();
        assert!(matches!(
            Store::open(&dir.0),
            Err(AuthError::AlreadyOpen(_))
        ));
        drop(clone);
    }

    #[test]
    fn store_directory_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = TempDir::new("mode");
        let _store = Store::open(&dir.0).unwrap();
        let mode = std::fs::metadata(&dir.0).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn corrupt_record_is_reported_not_panicked_on() {
        let dir = TempDir::new("corrupt");
        let store = Store::open(&dir.0).unwrap();
        let mut wtxn = store.env.write_txn().unwrap();
        store.accounts.put(&mut wtxn, "eve", b"{not json").unwrap();
        wtxn.commit().unwrap();
        assert!(matches!(store.get("eve"), Err(AuthError::Corrupt { .. })));
        assert!(matches!(store.list(), Err(AuthError::Corrupt { .. })));
    }

    #[test]
    fn store_is_send_sync_and_clone() {
        fn check<T: Send + Sync + Clone>() {}
        check::<Store>();
    }

    /// Environment variable telling the re-executed test binary to act as "the other
    /// process" (see `writes_from_another_process_are_visible_to_an_open_store`).
    const CHILD_ENV: &str = "DG_AUTH_STORE_CHILD_DIR";

    /// Child half of the multi-process test: when run with `CHILD_ENV` set, opens the store
    /// and creates an account, like `dungeongate user add` does while the server runs.
    #[test]
    fn child_process_writer() {
        let Some(dir) = std::env::var_os(CHILD_ENV) else {
            return; // Only does something when spawned by the parent test.
        };
        let store = Store::open(Path::new(&dir)).unwrap();
        store.create(&acct("Zed")).unwrap();
        store.update("alice", |a| a.locked = true).unwrap();
    }

    #[test]
    fn writes_from_another_process_are_visible_to_an_open_store() {
        let dir = TempDir::new("multiproc");
        let store = Store::open(&dir.0).unwrap();
        store.create(&acct("alice")).unwrap();
        // Touch the store so any snapshot caching would show up.
        assert_eq!(store.get("zed").unwrap(), None);

        let exe = std::env::current_exe().unwrap();
        let child = std::process::Command::new(exe)
            .args([
                "--exact",
                "auth::store::tests::child_process_writer",
                "--test-threads=1",
                "--nocapture",
            ])
            .env(CHILD_ENV, &dir.0)
            .output()
            .unwrap();
        // Output is captured (not inherited) so the child's own test summary does not
        // mingle with this run's.
        assert!(
            child.status.success(),
            "child failed:\n{}\n{}",
            String::from_utf8_lossy(&child.stdout),
            String::from_utf8_lossy(&child.stderr)
        );
        let summary = String::from_utf8_lossy(&child.stdout);
        assert!(
            summary.contains("1 passed"),
            "child ran its test: {summary}"
        );

        let zed = store
            .get("zed")
            .unwrap()
            .expect("child's create is visible");
        assert_eq!(zed.name, "Zed");
        assert!(store.get("alice").unwrap().unwrap().locked);
        assert_eq!(store.count().unwrap(), 2);
    }
}
