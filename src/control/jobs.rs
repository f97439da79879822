//! The blocking half of the control core: every LMDB transaction, every argon2 run and the
//! options editor's file work, packed
//! as a [`Job`] the reactor hands to its thread pool and a [`JobDone`] it hands back.
//!
//! A job carries everything it needs (a `Store` handle, the hasher, the password) so it runs
//! on any thread; it times itself, and the control thread records the time in the metrics
//! (the metric cells have one writer: the control core). Passwords stay in `Zeroizing`
//! buffers until the job drops them; `Debug` names the kind of work only.

use crate::auth::{Account, AuthError, AuthorizedKey, PasswordError, PasswordHasher, Store};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// Names one operation of the control core (a request in progress, a lock, a revocation
/// read); never reused.
pub(super) type OpId = u64;

/// Blocking work for the pool: LMDB reads and writes, argon2. `Send`; run it on another
/// thread with [`Job::run`] and give the result to [`super::Control::handle_job_done`].
pub struct Job {
    /// The operation this step belongs to.
    pub(super) op: OpId,
    /// What to do.
    pub(super) work: Work,
}

/// The result of a [`Job`], to give back to the control core. `Send`.
pub struct JobDone {
    /// The operation the job belonged to.
    pub(super) op: OpId,
    /// The job held a hash slot (it is free again).
    pub(super) hashed: bool,
    /// What came of it.
    pub(super) done: Done,
}

/// The kinds of blocking work.
pub(super) enum Work {
    /// Read one account.
    Lookup { store: Store, name: String },
    /// argon2 verify (`phc: None`: an unknown name, verified against the dummy hash).
    Verify {
        hasher: Arc<PasswordHasher>,
        phc: Option<String>,
        password: Zeroizing<String>,
    },
    /// argon2 hash of a new password.
    Hash {
        hasher: Arc<PasswordHasher>,
        password: Zeroizing<String>,
    },
    /// Write a new account (its `created_unix` stamped when the job runs).
    Create { store: Store, account: Account },
    /// Read-modify-write one account.
    Update {
        store: Store,
        name: String,
        change: Change,
    },
    /// Accounts locked or deleted after revocation number `after`.
    Revocations { store: Store, after: u64 },
    /// Read or change one account's SSH keys.
    Keys {
        store: Store,
        name: String,
        op: KeyOp,
    },
    /// Read or write a player's options file (file system work, not the store's).
    Options(Box<super::options::OptionsJob>),
}

/// What a [`Work::Keys`] does.
pub(super) enum KeyOp {
    /// Read the keys.
    List,
    /// Add a checked key (stamped with the time when the job runs), unless the account has it
    /// already or has [`crate::auth::MAX_KEYS_PER_ACCOUNT`] keys.
    Add(AuthorizedKey),
    /// Remove the key with this fingerprint, if it is there.
    Remove(String),
}

/// What an [`Work::Update`] changes.
pub(super) enum Change {
    /// A new password hash.
    Password(String),
    /// A new (or no) e-mail address.
    Email(Option<String>),
    /// Lock the account (too many failures).
    Lock,
    /// An admin locks (with a reason) or unlocks the account.
    SetLock {
        locked: bool,
        reason: Option<String>,
    },
}

/// What came of a job.
pub(super) enum Done {
    Looked {
        account: Result<Option<Account>, AuthError>,
        took: Duration,
    },
    Verified {
        ok: bool,
        took: Duration,
    },
    Hashed {
        phc: Result<String, PasswordError>,
        took: Duration,
    },
    Created {
        result: Result<(), AuthError>,
        took: Duration,
    },
    Updated {
        result: Result<(), AuthError>,
        took: Duration,
    },
    Revocations(Result<(u64, Vec<String>), AuthError>),
    /// The account's keys after a [`Work::Keys`], or why not.
    Keys {
        result: Result<Vec<AuthorizedKey>, super::keys::KeysRefused>,
        took: Duration,
    },
    /// An options file read or written.
    Options(super::options::OptionsDone),
    /// The job never ran ([`Job::refused`]).
    Refused,
}

impl Job {
    /// Do the work (blocking: an LMDB commit waits for fsync, argon2 costs ~20 ms of CPU).
    /// An argon2 run (seconds of CPU at most `max_concurrent` at a time), rather than an
    /// LMDB transaction (microseconds: several can share one trip to the pool).
    pub fn is_hashing(&self) -> bool {
        matches!(self.work, Work::Verify { .. } | Work::Hash { .. })
    }

    pub fn run(self) -> JobDone {
        let hashed = self.hashes();
        let started = Instant::now();
        let done = match self.work {
            Work::Lookup { store, name } => Done::Looked {
                account: store.get(&name),
                took: started.elapsed(),
            },
            Work::Verify {
                hasher,
                phc,
                password,
            } => Done::Verified {
                ok: hasher.verify(phc.as_deref(), &password),
                took: started.elapsed(),
            },
            Work::Hash { hasher, password } => Done::Hashed {
                phc: hasher.hash(&password),
                took: started.elapsed(),
            },
            Work::Create { store, mut account } => {
                account.created_unix = crate::auth::now_unix();
                Done::Created {
                    result: store.create(&account),
                    took: started.elapsed(),
                }
            }
            Work::Update {
                store,
                name,
                change,
            } => {
                let result = store
                    .update(&name, |a| match change {
                        Change::Password(phc) => a.password_phc = phc,
                        Change::Email(email) => a.email = email,
                        Change::Lock => a.locked = true,
                        Change::SetLock { locked, reason } => {
                            a.locked = locked;
                            a.lock_reason = if locked { reason } else { None };
                        }
                    })
                    .map(|_| ());
                Done::Updated {
                    result,
                    took: started.elapsed(),
                }
            }
            Work::Revocations { store, after } => Done::Revocations(store.revocations_since(after)),
            Work::Keys { store, name, op } => Done::Keys {
                result: super::keys::run(&store, &name, op),
                took: started.elapsed(),
            },
            Work::Options(job) => Done::Options(job.run()),
        };
        JobDone {
            op: self.op,
            hashed,
            done,
        }
    }

    /// The job cannot run (the pool is full, or shutting down): hand the result back all
    /// the same, and whoever waits for it is answered [`super::Reply::Unavailable`].
    pub fn refused(self) -> JobDone {
        JobDone {
            op: self.op,
            hashed: self.hashes(),
            done: Done::Refused,
        }
    }

    /// Whether this job runs argon2 (and so takes one of the `max_concurrent` hash slots).
    pub(super) fn hashes(&self) -> bool {
        matches!(self.work, Work::Verify { .. } | Work::Hash { .. })
    }

    /// The kind of work, for `Debug` and logs.
    fn kind(&self) -> &'static str {
        match self.work {
            Work::Lookup { .. } => "lookup",
            Work::Verify { .. } => "verify",
            Work::Hash { .. } => "hash",
            Work::Create { .. } => "create",
            Work::Update { .. } => "update",
            Work::Revocations { .. } => "revocations",
            Work::Keys { .. } => "keys",
            Work::Options(_) => "options",
        }
    }
}

/// The kind of work only: no name, no password.
impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("op", &self.op)
            .field("kind", &self.kind())
            .finish()
    }
}

/// The operation only.
impl std::fmt::Debug for JobDone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobDone")
            .field("op", &self.op)
            .finish_non_exhaustive()
    }
}
