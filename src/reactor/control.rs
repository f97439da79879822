//! The control core: every account decision. LMDB lives here (one owner, as DESIGN.md says)
//! and argon2 runs on this executor's blocking pool with a concurrency cap, so a password
//! flood costs at most `max_concurrent` hashes of memory and never stalls a data core.

use crate::auth::{self, Account, AuthError, PasswordHasher, Store, MAX_PASSWORD_LEN};
use crate::limits::throttle::{Blocked, Throttle};
use crate::lobby::UserInfo;
use crate::metrics::{ControlMetrics, DbOp, FailReason};
use glommio::channels::shared_channel::{ConnectedReceiver, ConnectedSender};
use glommio::sync::Semaphore;
use std::cell::{Cell, RefCell};
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;
use zeroize::Zeroizing;

/// A request from a data core, with what is needed to route the reply back.
pub struct Envelope {
    /// Data core that asked (index into the reply senders).
    pub core: usize,
    /// The asker's request number, echoed in the reply.
    pub id: u64,
    pub request: Request,
}

/// What a data core can ask.
pub enum Request {
    /// An SSH authentication attempt for `user` from `source`.
    SshAuth {
        user: String,
        attempt: SshAttempt,
        source: IpAddr,
    },
    /// Lobby login with name and password.
    Login {
        name: String,
        password: Zeroizing<String>,
        source: IpAddr,
    },
    /// Lobby registration.
    Register {
        name: String,
        password: Zeroizing<String>,
        email: Option<String>,
        source: IpAddr,
    },
    ChangePassword {
        name: String,
        password: Zeroizing<String>,
    },
    ChangeEmail {
        name: String,
        email: Option<String>,
    },
    /// `user` is about to start `game_id`: refused when that account already runs it (two
    /// copies of one game under one name clobber each other's save).
    ClaimGame {
        user: String,
        game_id: String,
    },
    /// The claimed game ended.
    ReleaseGame {
        user: String,
        game_id: String,
    },
}

/// The SSH method, owned (it crosses cores).
pub enum SshAttempt {
    None,
    Password(Zeroizing<String>),
    /// A public key blob; `signed` means the SSH core verified a signature by it (an
    /// unsigned one is the "may I use this key?" query, not a login attempt).
    Key {
        blob: Vec<u8>,
        signed: bool,
    },
}

/// The answer to one request.
pub struct ReplyEnvelope {
    pub id: u64,
    pub reply: Reply,
}

pub enum Reply {
    Ssh(SshOutcome),
    User(Result<UserInfo, String>),
    Done(Result<(), String>),
    /// Unasked (id [`NOTICE`]): this account was locked or deleted; end its sessions.
    EndSessionsOf(String),
}

/// The id of a message the control core sends a data core unasked.
pub const NOTICE: u64 = u64::MAX;

/// How often the control core looks for accounts locked or deleted (by the CLI, say).
const REVOCATION_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// Tell every data core about accounts locked or deleted since the server started, so their
/// live sessions end (games get their hangup and save).
pub async fn watch_revocations(
    store: Store,
    cores: Rc<RefCell<Vec<Rc<ConnectedSender<ReplyEnvelope>>>>>,
) {
    let mut seen = match store.revocations_since(u64::MAX) {
        Ok((latest, _)) => latest,
        Err(e) => {
            tracing::error!(error = %e, "cannot read account revocations; locks take effect at next login only");
            return;
        }
    };
    loop {
        glommio::timer::sleep(REVOCATION_POLL).await;
        let (latest, names) = match store.revocations_since(seen) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read account revocations");
                continue;
            }
        };
        seen = latest;
        for name in names {
            tracing::info!(user = %auth::printable(&name), "account locked or removed: ending its sessions");
            let senders: Vec<_> = cores.borrow().clone();
            for tx in senders {
                let _ = tx
                    .send(ReplyEnvelope {
                        id: NOTICE,
                        reply: Reply::EndSessionsOf(name.clone()),
                    })
                    .await;
            }
        }
    }
}

/// What an SSH authentication attempt means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SshOutcome {
    /// Not a registered account: in as a guest (anonymous lobby).
    Guest,
    /// A registered account, authenticated.
    User(UserInfo),
    /// A registered account and the attempt failed (or the account is locked).
    Denied,
}

/// Shared, thread-safe handles the control core works with.
pub struct ControlState {
    pub store: Store,
    pub hasher: Arc<PasswordHasher>,
    /// Caps concurrent argon2 runs.
    pub hash_slots: Semaphore,
    /// Hashes running or waiting for a slot.
    pub hash_queue: Cell<usize>,
    /// Most hashes running or waiting; past it the answer is "busy, try again".
    pub max_hash_queue: usize,
    /// Failure backoff per account and per source, registrations per source.
    pub throttle: RefCell<Throttle>,
    /// Lock an account after this many failures in a row (0: never; the backoff still runs).
    pub lock_after_failures: u32,
    /// What counts as one source (the configured prefix lengths).
    pub grouping: crate::limits::SourceGrouping,
    /// (account, game id) of every game running on any core.
    pub running_games: RefCell<std::collections::HashSet<(String, String)>>,
    /// auth_* metric families.
    pub metrics: Arc<ControlMetrics>,
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

/// What the lobby shows for a password that was not checked.
fn not_checked_message(n: &NotChecked) -> String {
    match n {
        NotChecked::TooLong => "That password is too long.".into(),
        NotChecked::Throttled(b) => {
            let secs = b.until().saturating_sub(now_ms()).div_ceil(1000).max(1);
            format!("Too many failed attempts; try again in {secs} s.")
        }
        NotChecked::Busy => BUSY.into(),
    }
}

/// Told to a lobby when the hashing queue is full.
const BUSY: &str = "The server is busy; try again in a moment.";

fn now_ms() -> u64 {
    super::clock::now_ms()
}

/// Serve one data core's requests until its sender closes; answers go back on `replies`.
pub async fn serve(
    state: Rc<ControlState>,
    requests: ConnectedReceiver<Envelope>,
    replies: Rc<ConnectedSender<ReplyEnvelope>>,
) {
    while let Some(env) = super::core::recv_polled(&requests).await {
        let state = state.clone();
        let replies = replies.clone();
        glommio::spawn_local(async move {
            let reply = handle(&state, env.request).await;
            let _ = replies.send(ReplyEnvelope { id: env.id, reply }).await;
        })
        .detach();
    }
}

async fn handle(state: &ControlState, request: Request) -> Reply {
    match request {
        Request::SshAuth {
            user,
            attempt,
            source,
        } => Reply::Ssh(ssh_auth(state, &user, attempt, source).await),
        Request::Login {
            name,
            password,
            source,
        } => Reply::User(login(state, &name, password, source).await),
        Request::Register {
            name,
            password,
            email,
            source,
        } => Reply::User(register(state, name, password, email, source).await),
        Request::ChangePassword { name, password } => {
            Reply::Done(change_password(state, &name, password).await)
        }
        Request::ChangeEmail { name, email } => Reply::Done(change_email(state, &name, email)),
        Request::ClaimGame { user, game_id } => {
            let fresh = state
                .running_games
                .borrow_mut()
                .insert((user, game_id.clone()));
            Reply::Done(if fresh { Ok(()) } else { Err(game_id) })
        }
        Request::ReleaseGame { user, game_id } => {
            state.running_games.borrow_mut().remove(&(user, game_id));
            Reply::Done(Ok(()))
        }
    }
}

fn lookup(state: &ControlState, name: &str) -> Result<Option<Account>, AuthError> {
    let started = Instant::now();
    let r = state.store.get(name);
    state.metrics.db_op(DbOp::Get, r.is_ok(), started.elapsed());
    r
}

fn user_info(a: &Account) -> UserInfo {
    UserInfo {
        name: a.name.clone(),
        admin: a.admin,
    }
}

/// A place in the bounded hashing queue, given back on drop.
struct QueueSlot<'a>(&'a Cell<usize>);

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

fn enter_queue(state: &ControlState) -> Option<QueueSlot<'_>> {
    if state.hash_queue.get() >= state.max_hash_queue {
        return None;
    }
    state.hash_queue.set(state.hash_queue.get() + 1);
    Some(QueueSlot(&state.hash_queue))
}

/// Check a password for `account` (None: no such account, checked against a dummy so it
/// costs the same) from `source`: refused unchecked when too long, throttled or the queue is
/// full; failures and successes feed the throttle.
async fn check_password(
    state: &ControlState,
    account: Option<&Account>,
    password: Zeroizing<String>,
    source: IpAddr,
) -> Result<bool, NotChecked> {
    if password.len() > MAX_PASSWORD_LEN {
        state.metrics.login_failed(FailReason::TooLong);
        return Err(NotChecked::TooLong);
    }
    let key = state.grouping.key(source);
    let name = account.map(|a| a.name.as_str());
    if let Err(b) = state.throttle.borrow().check(name, key, now_ms()) {
        state.metrics.login_failed(FailReason::Throttled);
        return Err(NotChecked::Throttled(b));
    }
    let Some(_slot) = enter_queue(state) else {
        state.metrics.login_failed(FailReason::Busy);
        return Err(NotChecked::Busy);
    };
    let ok = verify(state, account.map(|a| a.password_phc.clone()), password).await;
    if ok {
        if let Some(n) = name {
            state.throttle.borrow_mut().succeeded(n);
        }
    } else {
        let started = state.throttle.borrow_mut().failed(name, key, now_ms());
        for _ in 0..started {
            state.metrics.lockout();
        }
        if let (Some(a), true) = (account, state.lock_after_failures > 0) {
            let failures = state.throttle.borrow().account_failures(&a.name);
            if failures >= state.lock_after_failures && !a.locked {
                lock_account(state, &a.name, failures);
            }
        }
    }
    Ok(ok)
}

/// The operator asked for lockout by count: lock the account in the store.
fn lock_account(state: &ControlState, name: &str, failures: u32) {
    let reason = format!("{failures} failed password attempts");
    match update(state, name, |a| a.locked = true) {
        Ok(()) => {
            state.metrics.lockout();
            tracing::warn!(user = %crate::auth::printable(name), %reason, "account locked");
        }
        Err(e) => tracing::error!(error = %e, "could not lock the account"),
    }
}

/// Run argon2 off the reactor, at most `max_concurrent` at a time.
async fn verify(state: &ControlState, phc: Option<String>, password: Zeroizing<String>) -> bool {
    let Ok(_permit) = state.hash_slots.acquire_permit(1).await else {
        return false;
    };
    let hasher = state.hasher.clone();
    let started = Instant::now();
    let ok = glommio::executor()
        .spawn_blocking(move || hasher.verify(phc.as_deref(), &password))
        .await;
    state.metrics.password_hash(started.elapsed());
    ok
}

async fn hash(state: &ControlState, password: Zeroizing<String>) -> Result<String, String> {
    if password.len() > MAX_PASSWORD_LEN {
        return Err("That password is too long.".into());
    }
    let _slot = enter_queue(state).ok_or_else(|| BUSY.to_string())?;
    let _permit = state
        .hash_slots
        .acquire_permit(1)
        .await
        .map_err(|_| "server shutting down".to_string())?;
    let hasher = state.hasher.clone();
    let started = Instant::now();
    let r = glommio::executor()
        .spawn_blocking(move || hasher.hash(&password).map_err(|e| e.to_string()))
        .await;
    state.metrics.password_hash(started.elapsed());
    r
}

async fn ssh_auth(
    state: &ControlState,
    user: &str,
    attempt: SshAttempt,
    source: IpAddr,
) -> SshOutcome {
    let account = match lookup(state, user) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "account lookup failed");
            state.metrics.login_failed(FailReason::StoreError);
            return SshOutcome::Denied;
        }
    };
    let Some(account) = account else {
        return SshOutcome::Guest;
    };
    // `none` and key queries are probes of what is allowed, not login attempts.
    let (ok, counts, wrong) = match attempt {
        SshAttempt::None => (false, false, FailReason::WrongPassword),
        SshAttempt::Key { blob, signed } => (account.has_key(&blob), signed, FailReason::WrongKey),
        SshAttempt::Password(pw) => match check_password(state, Some(&account), pw, source).await {
            Ok(ok) => (ok, true, FailReason::WrongPassword),
            // Counted where it was refused; to SSH it is one more failure.
            Err(_) => return SshOutcome::Denied,
        },
    };
    let outcome = if ok && !account.locked {
        SshOutcome::User(user_info(&account))
    } else {
        SshOutcome::Denied
    };
    if counts {
        match (&outcome, ok) {
            (SshOutcome::User(_), _) => state.metrics.login_succeeded(),
            (_, true) => state.metrics.login_failed(FailReason::Locked),
            _ => state.metrics.login_failed(wrong),
        }
    }
    outcome
}

async fn login(
    state: &ControlState,
    name: &str,
    password: Zeroizing<String>,
    source: IpAddr,
) -> Result<UserInfo, String> {
    const REFUSED: &str = "Login failed: unknown name or wrong password.";
    let account = lookup(state, name).map_err(|e| {
        tracing::error!(error = %e, "account lookup failed");
        "The account store is unavailable; try again later.".to_string()
    })?;
    // An unknown name runs the same argon2 verify as a wrong password.
    let ok = check_password(state, account.as_ref(), password, source)
        .await
        .map_err(|n| not_checked_message(&n))?;
    match account {
        Some(a) if ok && !a.locked => {
            state.metrics.login_succeeded();
            Ok(user_info(&a))
        }
        Some(a) if ok && a.locked => {
            state.metrics.login_failed(FailReason::Locked);
            Err("This account is locked.".into())
        }
        Some(_) => {
            state.metrics.login_failed(FailReason::WrongPassword);
            Err(REFUSED.into())
        }
        None => {
            state.metrics.login_failed(FailReason::UnknownUser);
            Err(REFUSED.into())
        }
    }
}

async fn register(
    state: &ControlState,
    name: String,
    password: Zeroizing<String>,
    email: Option<String>,
    source: IpAddr,
) -> Result<UserInfo, String> {
    auth::validate_name(&name).map_err(|e| format!("Name '{name}' is not valid: {e}"))?;
    auth::validate_password(&password).map_err(|e| format!("Password not accepted: {e}"))?;
    if let Some(e) = &email {
        auth::validate_email(e).map_err(|err| format!("E-mail not accepted: {err}"))?;
    }
    if matches!(lookup(state, &name), Ok(Some(_))) {
        return Err(format!("The name '{name}' is taken."));
    }
    if !state
        .throttle
        .borrow_mut()
        .allow_registration(state.grouping.key(source), now_ms())
    {
        return Err("Too many new accounts from your address; try again later.".into());
    }
    let phc = hash(state, password).await?;
    let mut account = Account::new(&name, phc, auth::now_unix());
    account.email = email;
    let started = Instant::now();
    let created = state.store.create(&account);
    state
        .metrics
        .db_op(DbOp::Create, created.is_ok(), started.elapsed());
    match created {
        Ok(()) => {
            state.metrics.user_registered();
            tracing::info!(user = %crate::auth::printable(&name), "account registered");
            Ok(user_info(&account))
        }
        Err(AuthError::Exists(_)) => Err(format!("The name '{name}' is taken.")),
        Err(e) => {
            tracing::error!(error = %e, "account create failed");
            Err("Could not create the account; try again later.".into())
        }
    }
}

async fn change_password(
    state: &ControlState,
    name: &str,
    password: Zeroizing<String>,
) -> Result<(), String> {
    auth::validate_password(&password).map_err(|e| format!("Password not accepted: {e}"))?;
    let phc = hash(state, password).await?;
    update(state, name, |a| a.password_phc = phc)
        .map_err(|e| format!("Could not change the password: {e}"))
}

fn change_email(state: &ControlState, name: &str, email: Option<String>) -> Result<(), String> {
    if let Some(e) = &email {
        auth::validate_email(e).map_err(|err| format!("E-mail not accepted: {err}"))?;
    }
    update(state, name, |a| a.email = email)
        .map_err(|e| format!("Could not change the e-mail: {e}"))
}

fn update(state: &ControlState, name: &str, f: impl FnOnce(&mut Account)) -> Result<(), AuthError> {
    let started = Instant::now();
    let r = state.store.update(name, f).map(|_| ());
    state
        .metrics
        .db_op(DbOp::Update, r.is_ok(), started.elapsed());
    r
}
