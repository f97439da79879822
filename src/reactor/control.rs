//! The control core: every account decision. LMDB lives here (one owner, as DESIGN.md says)
//! and argon2 runs on this executor's blocking pool with a concurrency cap, so a password
//! flood costs at most `max_concurrent` hashes of memory and never stalls a data core.

use crate::auth::{self, Account, AuthError, PasswordHasher, Store};
use crate::lobby::UserInfo;
use glommio::channels::shared_channel::{ConnectedReceiver, ConnectedSender};
use glommio::sync::Semaphore;
use std::rc::Rc;
use std::sync::Arc;
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
    /// An SSH authentication attempt for `user`.
    SshAuth {
        user: String,
        attempt: SshAttempt,
    },
    /// Lobby login with name and password.
    Login {
        name: String,
        password: Zeroizing<String>,
    },
    /// Lobby registration.
    Register {
        name: String,
        password: Zeroizing<String>,
        email: Option<String>,
    },
    ChangePassword {
        name: String,
        password: Zeroizing<String>,
    },
    ChangeEmail {
        name: String,
        email: Option<String>,
    },
}

/// The SSH method, owned (it crosses cores).
pub enum SshAttempt {
    None,
    Password(Zeroizing<String>),
    /// A public key blob; the SSH core has already checked the signature if there was one.
    Key(Vec<u8>),
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
}

/// Serve one data core's requests until its sender closes; answers go back on `replies`.
pub async fn serve(
    state: Rc<ControlState>,
    requests: ConnectedReceiver<Envelope>,
    replies: Rc<ConnectedSender<ReplyEnvelope>>,
) {
    while let Some(env) = requests.recv().await {
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
        Request::SshAuth { user, attempt } => Reply::Ssh(ssh_auth(state, &user, attempt).await),
        Request::Login { name, password } => Reply::User(login(state, &name, password).await),
        Request::Register {
            name,
            password,
            email,
        } => Reply::User(register(state, name, password, email).await),
        Request::ChangePassword { name, password } => {
            Reply::Done(change_password(state, &name, password).await)
        }
        Request::ChangeEmail { name, email } => Reply::Done(change_email(state, &name, email)),
    }
}

fn lookup(state: &ControlState, name: &str) -> Result<Option<Account>, AuthError> {
    state.store.get(name)
}

fn user_info(a: &Account) -> UserInfo {
    UserInfo {
        name: a.name.clone(),
        admin: a.admin,
    }
}

/// Run argon2 off the reactor, at most `max_concurrent` at a time.
async fn verify(state: &ControlState, phc: Option<String>, password: Zeroizing<String>) -> bool {
    let Ok(_permit) = state.hash_slots.acquire_permit(1).await else {
        return false;
    };
    let hasher = state.hasher.clone();
    glommio::executor()
        .spawn_blocking(move || hasher.verify(phc.as_deref(), &password))
        .await
}

async fn hash(state: &ControlState, password: Zeroizing<String>) -> Result<String, String> {
    let _permit = state
        .hash_slots
        .acquire_permit(1)
        .await
        .map_err(|_| "server shutting down".to_string())?;
    let hasher = state.hasher.clone();
    glommio::executor()
        .spawn_blocking(move || hasher.hash(&password).map_err(|e| e.to_string()))
        .await
}

async fn ssh_auth(state: &ControlState, user: &str, attempt: SshAttempt) -> SshOutcome {
    let account = match lookup(state, user) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "account lookup failed");
            return SshOutcome::Denied;
        }
    };
    let Some(account) = account else {
        return SshOutcome::Guest;
    };
    let ok = match attempt {
        SshAttempt::None => false,
        SshAttempt::Key(blob) => account.has_key(&blob),
        SshAttempt::Password(pw) => verify(state, Some(account.password_phc.clone()), pw).await,
    };
    if ok && !account.locked {
        SshOutcome::User(user_info(&account))
    } else {
        SshOutcome::Denied
    }
}

async fn login(
    state: &ControlState,
    name: &str,
    password: Zeroizing<String>,
) -> Result<UserInfo, String> {
    const REFUSED: &str = "Login failed: unknown name or wrong password.";
    let account = lookup(state, name).map_err(|e| {
        tracing::error!(error = %e, "account lookup failed");
        "The account store is unavailable; try again later.".to_string()
    })?;
    // An unknown name runs the same argon2 verify as a wrong password.
    let ok = verify(
        state,
        account.as_ref().map(|a| a.password_phc.clone()),
        password,
    )
    .await;
    match account {
        Some(a) if ok && !a.locked => Ok(user_info(&a)),
        Some(a) if ok && a.locked => Err("This account is locked.".into()),
        _ => Err(REFUSED.into()),
    }
}

async fn register(
    state: &ControlState,
    name: String,
    password: Zeroizing<String>,
    email: Option<String>,
) -> Result<UserInfo, String> {
    auth::validate_name(&name).map_err(|e| format!("Name '{name}' is not valid: {e}"))?;
    auth::validate_password(&password).map_err(|e| format!("Password not accepted: {e}"))?;
    if let Some(e) = &email {
        auth::validate_email(e).map_err(|err| format!("E-mail not accepted: {err}"))?;
    }
    if matches!(lookup(state, &name), Ok(Some(_))) {
        return Err(format!("The name '{name}' is taken."));
    }
    let phc = hash(state, password).await?;
    let mut account = Account::new(&name, phc, auth::now_unix());
    account.email = email;
    match state.store.create(&account) {
        Ok(()) => {
            tracing::info!(user = %name, "account registered");
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
    state
        .store
        .update(name, |a| a.password_phc = phc)
        .map(|_| ())
        .map_err(|e| format!("Could not change the password: {e}"))
}

fn change_email(state: &ControlState, name: &str, email: Option<String>) -> Result<(), String> {
    if let Some(e) = &email {
        auth::validate_email(e).map_err(|err| format!("E-mail not accepted: {err}"))?;
    }
    state
        .store
        .update(name, |a| a.email = email)
        .map(|_| ())
        .map_err(|e| format!("Could not change the e-mail: {e}"))
}
