//! What each request does, step by step: the decisions that need the control core's state
//! (throttle, hashing queue, running games, metrics) run here, between the blocking jobs.
//!
//! - SSH auth: lookup → (password: pre-checks → verify) → outcome. Unknown names are guests;
//!   `none` and unsigned key queries are probes, not login attempts.
//! - Login: lookup → pre-checks → verify (an unknown name against the dummy hash, so it
//!   costs the same as a wrong password) → outcome.
//! - Register: validation → lookup → queue and registration throttle → hash → create.
//! - Change password: validation → hash → update; change e-mail: validation → update.
//! - A failed password feeds the throttle; past `lock_after_failures` a lock job follows
//!   (fire and forget).

use super::jobs::{Change, Done, KeyOp, Work};
use super::messages::{Reply, Request, SshAttempt, SshOutcome};
use super::{Control, Notice, Origin};
use crate::auth::{self, Account, AuthError, MAX_PASSWORD_LEN};
use crate::limits::throttle::Blocked;
use crate::limits::SourceKey;
use crate::lobby::UserInfo;
use crate::metrics::{DbOp, FailReason};
use crate::ssh::server::Millis;
use std::net::IpAddr;
use std::time::Duration;
use zeroize::Zeroizing;

/// Told to a lobby when the hashing queue is full.
const BUSY: &str = "The server is busy; try again in a moment.";
/// A lobby login that failed on the name or the password (the same words for both).
const REFUSED: &str = "Login failed: unknown name or wrong password.";
/// A lobby login when the account could not be read.
const STORE_UNAVAILABLE: &str = "The account store is unavailable; try again later.";
/// A password longer than any we accept.
const TOO_LONG: &str = "That password is too long.";

/// An operation waiting for its next job's result.
pub(super) enum Step {
    /// An admin's lock or unlock.
    AdminLock {
        origin: Origin,
        name: String,
        locked: bool,
        reason: Option<String>,
    },
    /// SSH auth: reading the account.
    SshLookup {
        origin: Origin,
        attempt: SshAttempt,
        source: IpAddr,
    },
    /// Lobby login: reading the account.
    LoginLookup {
        origin: Origin,
        password: Zeroizing<String>,
        source: IpAddr,
    },
    /// SSH password auth or lobby login: argon2 verifying.
    Verify {
        /// The account (None: no such name, verified against the dummy hash).
        account: Option<Account>,
        /// Where the attempt came from (for the throttle).
        source: SourceKey,
        /// Who gets the answer, and in which form.
        then: Then,
    },
    /// Registration: is the name taken?
    RegisterLookup {
        origin: Origin,
        name: String,
        password: Zeroizing<String>,
        email: Option<String>,
        source: IpAddr,
    },
    /// Registration: hashing the password.
    RegisterHash {
        origin: Origin,
        name: String,
        email: Option<String>,
    },
    /// Registration: writing the account.
    RegisterCreate { origin: Origin, user: UserInfo },
    /// Password change: hashing the new password.
    PasswordHash { origin: Origin, name: String },
    /// Password change: writing it.
    PasswordUpdate { origin: Origin },
    /// E-mail change: writing it.
    EmailUpdate { origin: Origin },
    /// Locking an account after too many failures (nobody waits for it).
    Lock { name: String, failures: u32 },
    /// Reading the revocations.
    Revocations,
    /// Listing or changing an account's SSH keys (`keys.rs`).
    Keys { origin: Origin, write: bool },
    /// Reading or writing a player's options file (`options.rs`).
    Options { origin: Origin },
}

/// Who waits for a password verification.
pub(super) enum Then {
    Ssh(Origin),
    Login(Origin),
}

/// Why a password was not checked.
enum NotChecked {
    /// Too long to be anyone's password: refused before it is queued.
    TooLong,
    /// A backoff is in force for the account or the source.
    Throttled(Blocked),
    /// The hashing queue is full.
    Busy,
}

impl Control {
    /// Start `request`: answer it now, or queue its first job.
    pub(super) fn start(&mut self, origin: Origin, request: Request, now: Millis) {
        match request {
            Request::SshAuth {
                user,
                attempt,
                source,
            } => self.lookup(
                user,
                Step::SshLookup {
                    origin,
                    attempt,
                    source,
                },
            ),
            Request::Login {
                name,
                password,
                source,
            } => self.lookup(
                name,
                Step::LoginLookup {
                    origin,
                    password,
                    source,
                },
            ),
            Request::Register {
                name,
                password,
                email,
                source,
            } => {
                let checked = auth::validate_name(&name)
                    .map_err(|e| format!("Name '{name}' is not valid: {e}"))
                    .and_then(|()| {
                        auth::validate_password(&password)
                            .map_err(|e| format!("Password not accepted: {e}"))
                    })
                    .and_then(|()| validate_email(email.as_deref()));
                match checked {
                    Err(e) => self.reply(origin, Reply::User(Err(e))),
                    Ok(()) => self.lookup(
                        name.clone(),
                        Step::RegisterLookup {
                            origin,
                            name,
                            password,
                            email,
                            source,
                        },
                    ),
                }
            }
            Request::ChangePassword { name, password } => {
                if let Err(e) = auth::validate_password(&password) {
                    let e = format!("Password not accepted: {e}");
                    self.reply(origin, Reply::Done(Err(e)));
                    return;
                }
                if let Err(e) = self.hash(password, Step::PasswordHash { origin, name }) {
                    self.reply(origin, Reply::Done(Err(e)));
                }
            }
            Request::ChangeEmail { name, email } => {
                if let Err(e) = validate_email(email.as_deref()) {
                    self.reply(origin, Reply::Done(Err(e)));
                    return;
                }
                let work = Work::Update {
                    store: self.store.clone(),
                    name,
                    change: Change::Email(email),
                };
                self.submit(Step::EmailUpdate { origin }, work);
            }
            Request::ClaimGame { user, game_id } => {
                let reply = match self.directory.find(&user, &game_id) {
                    // Running and listed: the session may re-attach or take over.
                    Some(l) => Reply::Running(Box::new(l.clone())),
                    None if self.running_games.insert((user, game_id.clone())) => {
                        Reply::Done(Ok(()))
                    }
                    // Claimed but not listed: starting, or saving after its hangup.
                    None => Reply::Done(Err(game_id)),
                };
                self.reply(origin, reply);
            }
            Request::GamesOf { user } => {
                let list = self.directory.of(&user);
                self.reply(origin, Reply::Games(list.into()));
            }
            Request::GameDetached { game, detached } => self.directory.detached(game, detached),
            Request::AdminSessions => self.admin_sessions(origin, now),
            Request::AdminKick { session, reason } => self.admin_kick(origin, session, &reason),
            Request::AdminBroadcast { text } => self.admin_broadcast(origin, &text),
            Request::AdminDrain { on } => self.admin_drain(origin, on),
            Request::AdminLock {
                name,
                locked,
                reason,
            } => self.admin_lock(origin, name, locked, reason),
            Request::SessionsReport { query, sessions } => self.sessions_reported(query, sessions),
            Request::ReleaseGame { user, game_id } => {
                self.running_games.remove(&(user, game_id));
                self.reply(origin, Reply::Done(Ok(())));
            }
            Request::ListGames => {
                let list = self.directory.list();
                self.reply(origin, Reply::Games(list));
            }
            Request::GameListed(listing) => self.directory.listed(*listing),
            Request::GameStatus {
                game,
                cols,
                rows,
                last_output_ms,
                watchers,
            } => self
                .directory
                .status(game, cols, rows, last_output_ms, watchers),
            Request::GameUnlisted(game) => self.directory.unlisted(game),
            Request::ListKeys { name } => self.start_keys(origin, name, KeyOp::List),
            Request::AddKey { name, key } => self.start_add_key(origin, name, key),
            Request::RemoveKey { name, fingerprint } => {
                self.start_keys(origin, name, KeyOp::Remove(fingerprint));
            }
            Request::ReadOptions {
                name,
                game_id,
                config,
            } => self.start_options(origin, name, game_id, config, None),
            Request::WriteOptions {
                name,
                game_id,
                config,
                text,
            } => self.start_options(origin, name, game_id, config, Some(text)),
        }
    }

    /// A job of the operation `step` finished with `done`: take the next step.
    pub(super) fn resume(&mut self, step: Step, done: Done, now: Millis) {
        match (step, done) {
            (
                Step::SshLookup {
                    origin,
                    attempt,
                    source,
                },
                Done::Looked { account, took },
            ) => {
                self.looked(account.is_ok(), took);
                self.ssh_looked(origin, account, attempt, source, now);
            }
            (
                Step::LoginLookup {
                    origin,
                    password,
                    source,
                },
                Done::Looked { account, took },
            ) => {
                self.looked(account.is_ok(), took);
                self.login_looked(origin, account, password, source, now);
            }
            (
                Step::Verify {
                    account,
                    source,
                    then,
                },
                Done::Verified { ok, took },
            ) => {
                self.metrics.password_hash(took);
                self.verified(account, source, then, ok, now);
            }
            (
                Step::RegisterLookup {
                    origin,
                    name,
                    password,
                    email,
                    source,
                },
                Done::Looked { account, took },
            ) => {
                self.looked(account.is_ok(), took);
                let taken = matches!(account, Ok(Some(_)));
                self.register_looked(origin, name, password, email, source, taken, now);
            }
            (
                Step::RegisterHash {
                    origin,
                    name,
                    email,
                },
                Done::Hashed { phc, took },
            ) => {
                self.metrics.password_hash(took);
                match phc {
                    Err(e) => self.reply(origin, Reply::User(Err(e.to_string()))),
                    Ok(phc) => {
                        // `created_unix` is stamped by the job (the wall clock is not ours).
                        let mut account = Account::new(&name, phc, 0);
                        account.email = email;
                        let user = user_info(&account);
                        let work = Work::Create {
                            store: self.store.clone(),
                            account,
                        };
                        self.submit(Step::RegisterCreate { origin, user }, work);
                    }
                }
            }
            (Step::RegisterCreate { origin, user }, Done::Created { result, took }) => {
                self.metrics.db_op(DbOp::Create, result.is_ok(), took);
                let reply = match result {
                    Ok(()) => {
                        self.metrics.user_registered();
                        tracing::info!(user = %auth::printable(&user.name), "account registered");
                        Ok(user)
                    }
                    Err(AuthError::Exists(_)) => Err(format!("The name '{}' is taken.", user.name)),
                    Err(e) => {
                        tracing::error!(error = %e, "account create failed");
                        Err("Could not create the account; try again later.".into())
                    }
                };
                self.reply(origin, Reply::User(reply));
            }
            (Step::PasswordHash { origin, name }, Done::Hashed { phc, took }) => {
                self.metrics.password_hash(took);
                match phc {
                    Err(e) => self.reply(origin, Reply::Done(Err(e.to_string()))),
                    Ok(phc) => {
                        let work = Work::Update {
                            store: self.store.clone(),
                            name,
                            change: Change::Password(phc),
                        };
                        self.submit(Step::PasswordUpdate { origin }, work);
                    }
                }
            }
            (Step::PasswordUpdate { origin }, Done::Updated { result, took }) => {
                self.metrics.db_op(DbOp::Update, result.is_ok(), took);
                let reply = result.map_err(|e| format!("Could not change the password: {e}"));
                self.reply(origin, Reply::Done(reply));
            }
            (Step::EmailUpdate { origin }, Done::Updated { result, took }) => {
                self.metrics.db_op(DbOp::Update, result.is_ok(), took);
                let reply = result.map_err(|e| format!("Could not change the e-mail: {e}"));
                self.reply(origin, Reply::Done(reply));
            }
            (Step::Lock { name, failures }, Done::Updated { result, took }) => {
                self.locking.remove(&name);
                self.metrics.db_op(DbOp::Update, result.is_ok(), took);
                match result {
                    Ok(()) => {
                        self.metrics.lockout();
                        let reason = format!("{failures} failed password attempts");
                        tracing::warn!(user = %auth::printable(&name), %reason, "account locked");
                    }
                    Err(e) => tracing::error!(error = %e, "could not lock the account"),
                }
            }
            (Step::Revocations, Done::Revocations(result)) => {
                for name in self.revocations.finished(result, now) {
                    tracing::info!(user = %auth::printable(&name), "account locked or removed: ending its sessions");
                    self.notices.push_back(Notice::EndSessionsOf(name));
                }
            }
            (Step::Lock { name, .. }, Done::Refused) => {
                self.locking.remove(&name);
                tracing::error!(user = %auth::printable(&name), "could not lock the account: the blocking pool refused the job");
            }
            (Step::Keys { origin, write }, Done::Keys { result, took }) => {
                self.keys_done(origin, write, result, took);
            }
            (
                Step::AdminLock {
                    origin,
                    name,
                    locked,
                    reason,
                },
                done,
            ) => self.admin_locked(origin, name, locked, reason, done),
            (Step::Options { origin }, Done::Options(done)) => self.options_done(origin, done),
            (Step::Revocations, Done::Refused) => self.revocations.retry(now),
            (step, Done::Refused) => {
                if let Some(origin) = step.origin() {
                    self.reply(origin, Reply::Unavailable);
                }
            }
            (step, _) => {
                // Our bug: a job's result that does not fit the step it was queued for.
                tracing::error!("control: a job's result does not fit its operation");
                if let Some(origin) = step.origin() {
                    self.reply(origin, Reply::Unavailable);
                }
            }
        }
    }

    /// Queue a lookup of `name` for `step`.
    fn lookup(&mut self, name: String, step: Step) {
        let work = Work::Lookup {
            store: self.store.clone(),
            name,
        };
        self.submit(step, work);
    }

    /// Record a lookup in the metrics.
    fn looked(&self, ok: bool, took: Duration) {
        self.metrics.db_op(DbOp::Get, ok, took);
    }

    fn ssh_looked(
        &mut self,
        origin: Origin,
        account: Result<Option<Account>, AuthError>,
        attempt: SshAttempt,
        source: IpAddr,
        now: Millis,
    ) {
        let account = match account {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "account lookup failed");
                self.metrics.login_failed(FailReason::StoreError);
                self.reply(origin, Reply::Ssh(SshOutcome::Denied));
                return;
            }
        };
        let Some(account) = account else {
            self.reply(origin, Reply::Ssh(SshOutcome::Guest));
            return;
        };
        // `none` and key queries are probes of what is allowed, not login attempts.
        match attempt {
            SshAttempt::None => {
                self.ssh_decided(origin, &account, false, false, FailReason::WrongPassword)
            }
            SshAttempt::Key { blob, signed } => {
                let ok = account.has_key(&blob);
                self.ssh_decided(origin, &account, ok, signed, FailReason::WrongKey);
            }
            SshAttempt::Password(password) => {
                let then = Then::Ssh(origin);
                if self
                    .check_password(Some(account), password, source, then, now)
                    .is_err()
                {
                    // Counted where it was refused; to SSH it is one more failure.
                    self.reply(origin, Reply::Ssh(SshOutcome::Denied));
                }
            }
        }
    }

    /// The SSH answer for `account`: in when `ok` and not locked. `counts`: a login attempt
    /// (not a probe), recorded in the metrics, a failure as `wrong` unless the account is
    /// locked.
    fn ssh_decided(
        &mut self,
        origin: Origin,
        account: &Account,
        ok: bool,
        counts: bool,
        wrong: FailReason,
    ) {
        let outcome = if ok && !account.locked {
            SshOutcome::User(self.user_info(account))
        } else {
            SshOutcome::Denied
        };
        if counts {
            match (&outcome, ok) {
                (SshOutcome::User(_), _) => self.metrics.login_succeeded(),
                (_, true) => self.metrics.login_failed(FailReason::Locked),
                _ => self.metrics.login_failed(wrong),
            }
        }
        self.reply(origin, Reply::Ssh(outcome));
    }

    fn login_looked(
        &mut self,
        origin: Origin,
        account: Result<Option<Account>, AuthError>,
        password: Zeroizing<String>,
        source: IpAddr,
        now: Millis,
    ) {
        let account = match account {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "account lookup failed");
                self.reply(origin, Reply::User(Err(STORE_UNAVAILABLE.into())));
                return;
            }
        };
        // An unknown name runs the same argon2 verify as a wrong password.
        let then = Then::Login(origin);
        if let Err(n) = self.check_password(account, password, source, then, now) {
            let message = not_checked_message(&n, now);
            self.reply(origin, Reply::User(Err(message)));
        }
    }

    /// Check a password for `account` (None: no such account, checked against a dummy so it
    /// costs the same) from `source`: refused unchecked when too long, throttled or the queue
    /// is full (each counted in the metrics); else a verify job is queued and `then` gets
    /// the answer.
    fn check_password(
        &mut self,
        account: Option<Account>,
        password: Zeroizing<String>,
        source: IpAddr,
        then: Then,
        now: Millis,
    ) -> Result<(), NotChecked> {
        if password.len() > MAX_PASSWORD_LEN {
            self.metrics.login_failed(FailReason::TooLong);
            return Err(NotChecked::TooLong);
        }
        let key = self.settings.grouping.key(source);
        let name = account.as_ref().map(|a| a.name.as_str());
        if let Err(b) = self.throttle.check(name, key, now) {
            self.metrics.login_failed(FailReason::Throttled);
            return Err(NotChecked::Throttled(b));
        }
        if self.hash_queue_full() {
            self.metrics.login_failed(FailReason::Busy);
            return Err(NotChecked::Busy);
        }
        let work = Work::Verify {
            hasher: self.hasher.clone(),
            phc: account.as_ref().map(|a| a.password_phc.clone()),
            password,
        };
        let step = Step::Verify {
            account,
            source: key,
            then,
        };
        self.submit(step, work);
        Ok(())
    }

    /// A password was verified: feed the throttle (and maybe lock the account), then answer.
    fn verified(
        &mut self,
        account: Option<Account>,
        source: SourceKey,
        then: Then,
        ok: bool,
        now: Millis,
    ) {
        let name = account.as_ref().map(|a| a.name.as_str());
        if ok {
            if let Some(n) = name {
                self.throttle.succeeded(n);
            }
        } else {
            let started = self.throttle.failed(name, source, now);
            for _ in 0..started {
                self.metrics.lockout();
            }
            if let (Some(a), true) = (&account, self.settings.lock_after_failures > 0) {
                let failures = self.throttle.account_failures(&a.name);
                if failures >= self.settings.lock_after_failures && !a.locked {
                    self.lock_account(a.name.clone(), failures);
                }
            }
        }
        match then {
            Then::Ssh(origin) => match account {
                Some(a) => self.ssh_decided(origin, &a, ok, true, FailReason::WrongPassword),
                None => self.reply(origin, Reply::Ssh(SshOutcome::Denied)),
            },
            Then::Login(origin) => {
                let reply = match account {
                    Some(a) if ok && !a.locked => {
                        self.metrics.login_succeeded();
                        Ok(self.user_info(&a))
                    }
                    Some(_) if ok => {
                        self.metrics.login_failed(FailReason::Locked);
                        Err("This account is locked.".into())
                    }
                    Some(_) => {
                        self.metrics.login_failed(FailReason::WrongPassword);
                        Err(REFUSED.into())
                    }
                    None => {
                        self.metrics.login_failed(FailReason::UnknownUser);
                        Err(REFUSED.into())
                    }
                };
                self.reply(origin, Reply::User(reply));
            }
        }
    }

    /// The operator asked for lockout by count: lock the account in the store (once, however
    /// many failures land before the lock does).
    fn lock_account(&mut self, name: String, failures: u32) {
        if !self.locking.insert(name.clone()) {
            return;
        }
        let work = Work::Update {
            store: self.store.clone(),
            name: name.clone(),
            change: Change::Lock,
        };
        self.submit(Step::Lock { name, failures }, work);
    }

    #[allow(clippy::too_many_arguments)]
    fn register_looked(
        &mut self,
        origin: Origin,
        name: String,
        password: Zeroizing<String>,
        email: Option<String>,
        source: IpAddr,
        taken: bool,
        now: Millis,
    ) {
        if taken {
            let e = format!("The name '{name}' is taken.");
            self.reply(origin, Reply::User(Err(e)));
            return;
        }
        // Busy before the registration allowance: a "busy" must not use one up.
        if self.hash_queue_full() {
            self.reply(origin, Reply::User(Err(BUSY.into())));
            return;
        }
        let key = self.settings.grouping.key(source);
        if !self.throttle.allow_registration(key, now) {
            let e = "Too many new accounts from your address; try again later.";
            self.reply(origin, Reply::User(Err(e.into())));
            return;
        }
        if let Err(e) = self.hash(
            password,
            Step::RegisterHash {
                origin,
                name,
                email,
            },
        ) {
            self.reply(origin, Reply::User(Err(e)));
        }
    }

    /// Queue a hash of a new password for `step`; refused when too long or the hashing
    /// queue is full (the message for the lobby).
    fn hash(&mut self, password: Zeroizing<String>, step: Step) -> Result<(), String> {
        if password.len() > MAX_PASSWORD_LEN {
            return Err(TOO_LONG.into());
        }
        if self.hash_queue_full() {
            return Err(BUSY.into());
        }
        let work = Work::Hash {
            hasher: self.hasher.clone(),
            password,
        };
        self.submit(step, work);
        Ok(())
    }
}

impl Step {
    /// Who waits for this operation's answer, if anyone.
    fn origin(&self) -> Option<Origin> {
        match self {
            Step::SshLookup { origin, .. }
            | Step::LoginLookup { origin, .. }
            | Step::RegisterLookup { origin, .. }
            | Step::RegisterHash { origin, .. }
            | Step::RegisterCreate { origin, .. }
            | Step::PasswordHash { origin, .. }
            | Step::PasswordUpdate { origin }
            | Step::EmailUpdate { origin }
            | Step::Keys { origin, .. }
            | Step::AdminLock { origin, .. }
            | Step::Options { origin } => Some(*origin),
            Step::Verify {
                then: Then::Ssh(origin) | Then::Login(origin),
                ..
            } => Some(*origin),
            Step::Lock { .. } | Step::Revocations => None,
        }
    }
}

/// An e-mail address, if any, must look like one.
fn validate_email(email: Option<&str>) -> Result<(), String> {
    match email {
        Some(e) => auth::validate_email(e).map_err(|err| format!("E-mail not accepted: {err}")),
        None => Ok(()),
    }
}

/// What the lobby shows for a password that was not checked.
fn not_checked_message(n: &NotChecked, now: Millis) -> String {
    match n {
        NotChecked::TooLong => TOO_LONG.into(),
        NotChecked::Throttled(b) => {
            let secs = b.until().saturating_sub(now).div_ceil(1000).max(1);
            format!("Too many failed attempts; try again in {secs} s.")
        }
        NotChecked::Busy => BUSY.into(),
    }
}

fn user_info(a: &Account) -> UserInfo {
    UserInfo {
        name: a.name.clone(),
        admin: a.admin,
        running: Vec::new(),
    }
}

impl Control {
    /// Who logged in, with the games the account runs now (its lobby offers them at once,
    /// without a request of its own).
    fn user_info(&self, a: &Account) -> UserInfo {
        UserInfo {
            running: self.directory.of(&a.name),
            ..user_info(a)
        }
    }
}
