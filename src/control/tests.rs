//! The control core in memory: a temporary LMDB store, argon2 with tiny costs, jobs run
//! inline by the test (or held back to see the queue), virtual time.

use super::*;
use crate::auth::{Account, AuthorizedKey, PasswordParams};
use crate::limits::throttle::Backoff;
use crate::lobby::UserInfo;
use crate::metrics::{parse, Registry, RegistryOptions};
use std::net::IpAddr;
use zeroize::Zeroizing;

/// Small argon2 parameters so tests stay fast.
const FAST: PasswordParams = PasswordParams {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};

fn settings() -> ControlSettings {
    ControlSettings {
        max_concurrent: 2,
        max_queued: 4,
        throttle: ThrottleRules {
            account: Backoff {
                free_failures: 3,
                base_ms: 5_000,
                max_ms: 60_000,
                forget_ms: 900_000,
            },
            source: Backoff {
                free_failures: 20,
                base_ms: 1_000,
                max_ms: 60_000,
                forget_ms: 900_000,
            },
            registrations_per_hour: 2,
        },
        lock_after_failures: 0,
        grouping: SourceGrouping::default(),
        max_pending: 64,
        cores: 2,
        revocation_poll_ms: REVOCATION_POLL_MS,
        games_user: None,
    }
}

/// A control core over a fresh store, with the test's clock and its own metric cells.
/// (Shared with `keys.rs`'s tests.)
pub(in crate::control) struct Harness {
    pub(in crate::control) control: Control,
    pub(in crate::control) store: Store,
    hasher: Arc<PasswordHasher>,
    registry: Registry,
    now: Millis,
    next_origin: u64,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub(in crate::control) fn new() -> Harness {
        Harness::with(settings())
    }

    fn with(settings: ControlSettings) -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path()).expect("store");
        let hasher = Arc::new(PasswordHasher::new(FAST).expect("hasher"));
        let registry = Registry::new(RegistryOptions {
            cores: 1,
            game_ids: vec![],
            connections_limit: 10,
            version: "t".into(),
            commit: "t".into(),
        });
        let now = 0;
        let control = Control::new(
            store.clone(),
            hasher.clone(),
            settings,
            registry.control(),
            now,
        );
        Harness {
            control,
            store,
            hasher,
            registry,
            now,
            next_origin: 1,
            _dir: dir,
        }
    }

    /// An account made the way the CLI makes one.
    pub(in crate::control) fn add_user(&self, name: &str, password: &str) {
        let phc = self.hasher.hash(password).expect("hash");
        self.store
            .create(&Account::new(name, phc, 0))
            .expect("create");
    }

    /// Send `request` without running any job; its origin.
    pub(in crate::control) fn send(&mut self, request: Request) -> Origin {
        let origin = Origin(self.next_origin);
        self.next_origin += 1;
        self.control.handle_request(origin, request, self.now);
        origin
    }

    /// Run every job there is (and those they lead to) inline.
    pub(in crate::control) fn run_jobs(&mut self) {
        while let Some(job) = self.control.poll_job() {
            let done = job.run();
            self.control.handle_job_done(done, self.now);
        }
    }

    /// Send `request`, run jobs until it is answered, return the answer.
    pub(in crate::control) fn ask(&mut self, request: Request) -> Reply {
        let origin = self.send(request);
        self.run_jobs();
        self.reply_to(origin)
    }

    /// The answer for `origin` among those waiting (others stay queued).
    pub(in crate::control) fn reply_to(&mut self, origin: Origin) -> Reply {
        let mut others = Vec::new();
        let mut found = None;
        while let Some((o, r)) = self.control.poll_reply() {
            if o == origin && found.is_none() {
                found = Some(r);
            } else {
                others.push((o, r));
            }
        }
        self.control.replies.extend(others);
        found.unwrap_or_else(|| panic!("no reply for {origin:?}"))
    }

    fn login(&mut self, name: &str, password: &str) -> Result<UserInfo, String> {
        match self.ask(login(name, password)) {
            Reply::User(r) => r,
            other => panic!("login answered {other:?}"),
        }
    }

    fn register(&mut self, name: &str, password: &str, source: &str) -> Result<UserInfo, String> {
        let request = Request::Register {
            name: name.into(),
            password: Zeroizing::new(password.into()),
            email: None,
            source: ip(source),
        };
        match self.ask(request) {
            Reply::User(r) => r,
            other => panic!("register answered {other:?}"),
        }
    }

    pub(in crate::control) fn ssh(&mut self, user: &str, attempt: SshAttempt) -> SshOutcome {
        let request = Request::SshAuth {
            user: user.into(),
            attempt,
            source: ip("192.0.2.1"),
        };
        match self.ask(request) {
            Reply::Ssh(o) => o,
            other => panic!("ssh auth answered {other:?}"),
        }
    }

    /// One sample of the control metrics (0 when absent).
    pub(in crate::control) fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let samples = parse::parse(&self.registry.render()).expect("scrape parses");
        parse::value(&samples, name, labels).unwrap_or(0.0)
    }

    fn failed(&self, reason: &str) -> f64 {
        self.metric("auth_failed_logins_total", &[("reason", reason)])
    }

    /// argon2 runs so far (hash and verify alike).
    fn hashes(&self) -> f64 {
        self.metric("auth_password_hash_duration_seconds_count", &[])
    }

    fn notices(&mut self) -> Vec<Notice> {
        std::iter::from_fn(|| self.control.poll_notice()).collect()
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

fn login(name: &str, password: &str) -> Request {
    Request::Login {
        name: name.into(),
        password: Zeroizing::new(password.into()),
        source: ip("192.0.2.1"),
    }
}

fn user(name: &str) -> UserInfo {
    UserInfo {
        name: name.into(),
        admin: false,
        running: Vec::new(),
    }
}

fn password(p: &str) -> SshAttempt {
    SshAttempt::Password(Zeroizing::new(p.into()))
}

const REFUSED: &str = "Login failed: unknown name or wrong password.";

// --- lobby login ---------------------------------------------------------------------

#[test]
fn the_right_password_logs_in_and_counts_a_success() {
    let mut h = Harness::new();
    h.add_user("Alice", "hunter22");
    assert_eq!(h.login("alice", "hunter22"), Ok(user("Alice")));
    assert_eq!(
        h.metric("auth_login_attempts_total", &[("status", "success")]),
        1.0
    );
    assert_eq!(
        h.metric(
            "auth_database_operations_total",
            &[("operation", "get"), ("status", "success")]
        ),
        1.0
    );
    assert_eq!(h.hashes(), 1.0);
    assert_eq!(h.control.jobs_in_flight(), 0);
}

#[test]
fn a_wrong_password_is_refused_in_the_same_words_as_an_unknown_name() {
    let mut h = Harness::new();
    h.add_user("alice", "hunter22");
    assert_eq!(h.login("alice", "hunter23"), Err(REFUSED.into()));
    assert_eq!(h.failed("wrong_password"), 1.0);
    assert_eq!(h.login("nobody", "hunter22"), Err(REFUSED.into()));
    assert_eq!(h.failed("unknown_user"), 1.0);
}

#[test]
fn an_unknown_name_costs_a_dummy_verify_like_a_wrong_password() {
    let mut h = Harness::new();
    assert_eq!(h.login("nobody", "hunter22"), Err(REFUSED.into()));
    assert_eq!(h.hashes(), 1.0, "argon2 ran for the unknown name");
}

#[test]
fn a_locked_account_with_the_right_password_is_told_it_is_locked() {
    let mut h = Harness::new();
    h.add_user("alice", "hunter22");
    h.store.update("alice", |a| a.locked = true).expect("lock");
    assert_eq!(
        h.login("alice", "hunter22"),
        Err("This account is locked.".into())
    );
    assert_eq!(h.failed("locked"), 1.0);
    assert_eq!(h.login("alice", "wrong-one"), Err(REFUSED.into()));
}

#[test]
fn a_password_longer_than_any_accepted_is_refused_without_hashing() {
    let mut h = Harness::new();
    h.add_user("alice", "hunter22");
    let long = "x".repeat(crate::auth::MAX_PASSWORD_LEN + 1);
    assert_eq!(
        h.login("alice", &long),
        Err("That password is too long.".into())
    );
    assert_eq!(h.failed("too_long"), 1.0);
    assert_eq!(h.hashes(), 0.0);
}

#[test]
fn a_store_that_cannot_be_read_makes_login_say_so() {
    let mut h = Harness::new();
    let origin = h.send(login("alice", "hunter22"));
    // The lookup comes back failed (as from a broken disk).
    let job = h.control.poll_job().expect("lookup job");
    let done = JobDone {
        op: job.op,
        hashed: false,
        done: jobs::Done::Looked {
            account: Err(crate::auth::AuthError::NotFound("x".into())),
            took: std::time::Duration::ZERO,
        },
    };
    h.control.handle_job_done(done, h.now);
    assert_eq!(
        h.reply_to(origin),
        Reply::User(Err(
            "The account store is unavailable; try again later.".into()
        ))
    );
    assert_eq!(
        h.metric(
            "auth_database_operations_total",
            &[("operation", "get"), ("status", "failure")]
        ),
        1.0
    );
}

// --- throttle and lockout --------------------------------------------------------------

#[test]
fn failures_past_the_free_ones_are_throttled_with_the_seconds_left() {
    let mut h = Harness::new();
    h.add_user("alice", "hunter22");
    for _ in 0..4 {
        assert_eq!(h.login("alice", "wrong-one"), Err(REFUSED.into()));
    }
    // The fourth failure started a 5 s block of the account.
    assert_eq!(h.metric("auth_lockouts_total", &[]), 1.0);
    let hashes = h.hashes();
    h.now = 1_200;
    assert_eq!(
        h.login("alice", "hunter22"),
        Err("Too many failed attempts; try again in 4 s.".into())
    );
    assert_eq!(h.failed("throttled"), 1.0);
    assert_eq!(h.hashes(), hashes, "a blocked attempt runs no argon2");
    // SSH is refused the same way while the block lasts.
    assert_eq!(h.ssh("alice", password("hunter22")), SshOutcome::Denied);
    assert_eq!(h.failed("throttled"), 2.0);
    // Once it is over the right password works and clears the count.
    h.now = 5_000;
    assert_eq!(h.login("alice", "hunter22"), Ok(user("alice")));
    assert_eq!(h.control.throttle.account_failures("alice"), 0);
}

#[test]
fn an_account_is_locked_after_the_configured_number_of_failures() {
    let mut s = settings();
    s.lock_after_failures = 3;
    s.throttle.account.free_failures = 10;
    let mut h = Harness::with(s);
    h.add_user("alice", "hunter22");
    for _ in 0..2 {
        assert_eq!(h.login("alice", "wrong-one"), Err(REFUSED.into()));
    }
    assert!(!h.store.get("alice").expect("get").expect("alice").locked);
    assert_eq!(h.login("alice", "wrong-one"), Err(REFUSED.into()));
    assert!(h.store.get("alice").expect("get").expect("alice").locked);
    assert_eq!(h.metric("auth_lockouts_total", &[]), 1.0);
    assert_eq!(
        h.login("alice", "hunter22"),
        Err("This account is locked.".into())
    );
}

#[test]
fn failures_landing_before_the_lock_lock_the_account_once() {
    let mut s = settings();
    s.lock_after_failures = 1;
    let mut h = Harness::with(s);
    h.add_user("alice", "hunter22");
    let a = h.send(login("alice", "wrong-one"));
    let b = h.send(login("alice", "wrong-two"));
    // Both lookups, then both verifies, before any lock job runs.
    let mut held = Vec::new();
    for _ in 0..2 {
        let job = h.control.poll_job().expect("lookup");
        h.control.handle_job_done(job.run(), h.now);
    }
    for _ in 0..2 {
        let job = h.control.poll_job().expect("verify");
        assert!(job.hashes());
        held.push(job.run());
    }
    for done in held {
        h.control.handle_job_done(done, h.now);
    }
    h.run_jobs();
    assert_eq!(h.reply_to(a), Reply::User(Err(REFUSED.into())));
    assert_eq!(h.reply_to(b), Reply::User(Err(REFUSED.into())));
    assert_eq!(
        h.metric(
            "auth_database_operations_total",
            &[("operation", "update"), ("status", "success")]
        ),
        1.0,
        "one lock write"
    );
    assert!(h.store.get("alice").expect("get").expect("alice").locked);
}

#[test]
fn the_hashing_queue_answers_busy_when_full() {
    // At most 2 hashes out at once, 4 running or waiting.
    let mut h = Harness::new();
    h.add_user("alice", "hunter22");
    let origins: Vec<Origin> = (0..5).map(|_| h.send(login("alice", "hunter22"))).collect();
    // The five lookups are not capped by the hash slots.
    let lookups: Vec<Job> = std::iter::from_fn(|| {
        let job = h.control.poll_job()?;
        (!job.hashes()).then_some(job)
    })
    .collect();
    assert_eq!(lookups.len(), 5);
    for job in lookups {
        h.control.handle_job_done(job.run(), h.now);
    }
    // The fifth verify found the queue full.
    let busy = "The server is busy; try again in a moment.";
    assert_eq!(h.reply_to(origins[4]), Reply::User(Err(busy.into())));
    assert_eq!(h.failed("busy"), 1.0);
    // Two are handed out, two wait.
    let first = h.control.poll_job().expect("hash 1");
    let second = h.control.poll_job().expect("hash 2");
    assert!(h.control.poll_job().is_none(), "no third hash at once");
    assert_eq!(h.control.jobs_in_flight(), 2);
    // Registration and password changes meet the same full queue.
    let register = h.register("bob", "hunter22", "192.0.2.9");
    assert_eq!(register, Err(busy.into()));
    let change = Request::ChangePassword {
        name: "alice".into(),
        password: Zeroizing::new("hunter33".into()),
    };
    assert_eq!(h.ask(change), Reply::Done(Err(busy.into())));
    // As hashes finish the waiting ones go out, and everyone is answered.
    h.control.handle_job_done(first.run(), h.now);
    h.control.handle_job_done(second.run(), h.now);
    h.run_jobs();
    for origin in &origins[..4] {
        assert_eq!(h.reply_to(*origin), Reply::User(Ok(user("alice"))));
    }
    assert_eq!(h.control.jobs_in_flight(), 0);
}

#[test]
fn requests_past_the_pending_bound_are_unavailable() {
    let mut s = settings();
    s.max_pending = 2;
    let mut h = Harness::with(s);
    let _ = h.send(login("a", "hunter22"));
    let _ = h.send(login("b", "hunter22"));
    let third = h.send(login("c", "hunter22"));
    assert_eq!(h.reply_to(third), Reply::Unavailable);
    // Claims need no job and are always answered.
    let claim = Request::ClaimGame {
        user: "a".into(),
        game_id: "nethack".into(),
    };
    assert_eq!(h.ask(claim), Reply::Done(Ok(())));
}

// --- registration --------------------------------------------------------------------

#[test]
fn a_registered_account_can_log_in() {
    let mut h = Harness::new();
    assert_eq!(
        h.register("Carol", "hunter22", "192.0.2.7"),
        Ok(user("Carol"))
    );
    assert_eq!(h.metric("auth_users_registered_total", &[]), 1.0);
    let stored = h.store.get("carol").expect("get").expect("carol");
    assert!(stored.created_unix > 0, "stamped when written");
    assert_eq!(h.login("CAROL", "hunter22"), Ok(user("Carol")));
}

#[test]
fn a_taken_name_cannot_be_registered_in_any_letter_case() {
    let mut h = Harness::new();
    h.add_user("alice", "hunter22");
    assert_eq!(
        h.register("ALICE", "hunter22", "192.0.2.7"),
        Err("The name 'ALICE' is taken.".into())
    );
}

#[test]
fn an_invalid_name_password_or_email_is_refused_before_any_job() {
    let mut h = Harness::new();
    let r = h.register("root", "hunter22", "192.0.2.7");
    assert!(
        matches!(&r, Err(e) if e.starts_with("Name 'root' is not valid: ")),
        "{r:?}"
    );
    let r = h.register("dave", "abc", "192.0.2.7");
    assert!(
        matches!(&r, Err(e) if e.starts_with("Password not accepted: ")),
        "{r:?}"
    );
    let request = Request::Register {
        name: "dave".into(),
        password: Zeroizing::new("hunter22".into()),
        email: Some("not an address".into()),
        source: ip("192.0.2.7"),
    };
    let origin = h.send(request);
    assert!(h.control.poll_job().is_none(), "refused before any job");
    let r = h.reply_to(origin);
    assert!(
        matches!(&r, Reply::User(Err(e)) if e.starts_with("E-mail not accepted: ")),
        "{r:?}"
    );
}

#[test]
fn registrations_from_one_address_are_limited_per_hour() {
    let mut h = Harness::new();
    assert!(h.register("user1", "hunter22", "198.51.100.7").is_ok());
    assert!(h.register("user2", "hunter22", "198.51.100.7").is_ok());
    assert_eq!(
        h.register("user3", "hunter22", "198.51.100.7"),
        Err("Too many new accounts from your address; try again later.".into())
    );
    assert!(h.register("user3", "hunter22", "198.51.100.8").is_ok());
    h.now = 3_600_000;
    assert!(h.register("user4", "hunter22", "198.51.100.7").is_ok());
}

// --- account changes -----------------------------------------------------------------

#[test]
fn a_changed_password_replaces_the_old_one() {
    let mut h = Harness::new();
    h.add_user("alice", "hunter22");
    let change = Request::ChangePassword {
        name: "alice".into(),
        password: Zeroizing::new("correct horse".into()),
    };
    assert_eq!(h.ask(change), Reply::Done(Ok(())));
    assert_eq!(h.login("alice", "hunter22"), Err(REFUSED.into()));
    assert_eq!(h.login("alice", "correct horse"), Ok(user("alice")));
    let short = Request::ChangePassword {
        name: "alice".into(),
        password: Zeroizing::new("abc".into()),
    };
    assert!(matches!(
        h.ask(short),
        Reply::Done(Err(e)) if e.starts_with("Password not accepted: ")
    ));
    let nobody = Request::ChangePassword {
        name: "nobody".into(),
        password: Zeroizing::new("hunter22".into()),
    };
    assert_eq!(
        h.ask(nobody),
        Reply::Done(Err(
            "Could not change the password: user 'nobody' does not exist".into()
        ))
    );
}

#[test]
fn a_changed_email_is_stored_and_a_bad_one_refused() {
    let mut h = Harness::new();
    h.add_user("alice", "hunter22");
    let change = Request::ChangeEmail {
        name: "alice".into(),
        email: Some("alice@example.org".into()),
    };
    assert_eq!(h.ask(change), Reply::Done(Ok(())));
    let stored = h.store.get("alice").expect("get").expect("alice");
    assert_eq!(stored.email.as_deref(), Some("alice@example.org"));
    let bad = Request::ChangeEmail {
        name: "alice".into(),
        email: Some("nope".into()),
    };
    assert!(matches!(
        h.ask(bad),
        Reply::Done(Err(e)) if e.starts_with("E-mail not accepted: ")
    ));
    let nobody = Request::ChangeEmail {
        name: "nobody".into(),
        email: None,
    };
    assert_eq!(
        h.ask(nobody),
        Reply::Done(Err(
            "Could not change the e-mail: user 'nobody' does not exist".into()
        ))
    );
}

// --- SSH authentication ----------------------------------------------------------------

#[test]
fn an_unregistered_ssh_user_is_a_guest_whatever_the_method() {
    let mut h = Harness::new();
    assert_eq!(h.ssh("nethack", SshAttempt::None), SshOutcome::Guest);
    assert_eq!(h.ssh("visitor", password("anything")), SshOutcome::Guest);
    assert_eq!(h.hashes(), 0.0);
    assert_eq!(
        h.metric("auth_login_attempts_total", &[]),
        0.0,
        "guests are not login attempts"
    );
}

#[test]
fn an_ssh_password_lets_a_user_in_or_is_denied() {
    let mut h = Harness::new();
    h.add_user("alice", "hunter22");
    assert_eq!(
        h.ssh("alice", password("hunter22")),
        SshOutcome::User(user("alice"))
    );
    assert_eq!(h.ssh("alice", password("hunter23")), SshOutcome::Denied);
    assert_eq!(h.failed("wrong_password"), 1.0);
    h.store.update("alice", |a| a.locked = true).expect("lock");
    assert_eq!(h.ssh("alice", password("hunter22")), SshOutcome::Denied);
    assert_eq!(h.failed("locked"), 1.0);
}

#[test]
fn ssh_none_for_a_registered_name_is_denied_without_counting() {
    let mut h = Harness::new();
    h.add_user("alice", "hunter22");
    assert_eq!(h.ssh("alice", SshAttempt::None), SshOutcome::Denied);
    assert_eq!(h.metric("auth_login_attempts_total", &[]), 0.0);
}

#[test]
fn a_key_query_is_answered_without_counting_and_a_signed_key_counts() {
    let mut h = Harness::new();
    h.add_user("alice", "hunter22");
    let blob = b"\x00\x00\x00\x0bssh-ed25519-test-key".to_vec();
    h.store
        .update("alice", |a| {
            a.keys.push(AuthorizedKey {
                key_type: "ssh-ed25519".into(),
                blob: blob.clone(),
                comment: String::new(),
                added_unix: 0,
            })
        })
        .expect("add key");
    let key = |blob: &[u8], signed| SshAttempt::Key {
        blob: blob.to_vec(),
        signed,
    };
    // "May I use this key?": yes for hers, no for another; neither is an attempt.
    assert_eq!(
        h.ssh("alice", key(&blob, false)),
        SshOutcome::User(user("alice"))
    );
    assert_eq!(h.ssh("alice", key(b"other", false)), SshOutcome::Denied);
    assert_eq!(h.metric("auth_login_attempts_total", &[]), 0.0);
    // A signature by her key logs in; by another key it is a wrong key.
    assert_eq!(
        h.ssh("alice", key(&blob, true)),
        SshOutcome::User(user("alice"))
    );
    assert_eq!(h.ssh("alice", key(b"other", true)), SshOutcome::Denied);
    assert_eq!(
        h.metric("auth_login_attempts_total", &[("status", "success")]),
        1.0
    );
    assert_eq!(h.failed("wrong_key"), 1.0);
    assert_eq!(h.hashes(), 0.0, "keys cost no argon2");
}

// --- games -----------------------------------------------------------------------------

#[test]
fn a_game_can_be_claimed_once_per_account_until_released() {
    let mut h = Harness::new();
    let claim = |u: &str, g: &str| Request::ClaimGame {
        user: u.into(),
        game_id: g.into(),
    };
    let release = |u: &str, g: &str| Request::ReleaseGame {
        user: u.into(),
        game_id: g.into(),
    };
    assert_eq!(h.ask(claim("alice", "nethack")), Reply::Done(Ok(())));
    assert_eq!(
        h.ask(claim("alice", "nethack")),
        Reply::Done(Err("nethack".into()))
    );
    assert_eq!(h.ask(claim("bob", "nethack")), Reply::Done(Ok(())));
    assert_eq!(h.ask(claim("alice", "crawl")), Reply::Done(Ok(())));
    assert_eq!(h.ask(release("alice", "nethack")), Reply::Done(Ok(())));
    assert_eq!(h.ask(claim("alice", "nethack")), Reply::Done(Ok(())));
}

#[test]
fn a_claim_for_a_listed_game_answers_where_it_runs_and_whether_it_waits() {
    let mut h = Harness::new();
    let claim = Request::ClaimGame {
        user: "alice".into(),
        game_id: "nethack".into(),
    };
    assert_eq!(h.ask(claim), Reply::Done(Ok(())));
    let game = crate::watch::GameRef {
        core: 1,
        slot: 4,
        generation: 9,
    };
    let listing = crate::watch::Listing {
        game,
        player: "alice".into(),
        game_id: "nethack".into(),
        game_name: "NetHack".into(),
        cols: 80,
        rows: 24,
        started_unix: 0,
        last_output_ms: 0,
        watchers: 0,
        detached: false,
    };
    h.send(Request::GameListed(Box::new(listing.clone())));
    let claim = || Request::ClaimGame {
        user: "alice".into(),
        game_id: "nethack".into(),
    };
    assert_eq!(h.ask(claim()), Reply::Running(Box::new(listing.clone())));
    h.send(Request::GameDetached {
        game,
        detached: true,
    });
    let detached = crate::watch::Listing {
        detached: true,
        ..listing
    };
    assert_eq!(h.ask(claim()), Reply::Running(Box::new(detached.clone())));
    // Her games, and nobody else's.
    let mine = h.ask(Request::GamesOf {
        user: "alice".into(),
    });
    assert_eq!(mine, Reply::Games(vec![detached].into()));
    let bobs = h.ask(Request::GamesOf { user: "bob".into() });
    assert_eq!(bobs, Reply::Games(Vec::new().into()));
    // Gone from the directory (saving after its hangup): claimed still, so refused.
    h.send(Request::GameUnlisted(game));
    assert_eq!(h.ask(claim()), Reply::Done(Err("nethack".into())));
}

// --- revocations ---------------------------------------------------------------------

#[test]
fn accounts_locked_or_deleted_elsewhere_end_their_sessions_within_a_period() {
    let mut h = Harness::new();
    h.add_user("alice", "hunter22");
    h.add_user("bob", "hunter22");
    // A lock from before the start is not replayed.
    h.store.update("bob", |a| a.locked = true).expect("lock");
    assert_eq!(h.control.poll_timeout(), Some(0));
    h.control.handle_timeout(0);
    assert_eq!(h.control.poll_timeout(), None, "a read is in flight");
    h.run_jobs();
    assert_eq!(h.notices(), []);
    assert_eq!(h.control.poll_timeout(), Some(1_000));

    // The CLI locks alice and deletes bob.
    h.store.update("alice", |a| a.locked = true).expect("lock");
    h.store.delete("bob").expect("delete");
    h.now = 500;
    h.control.handle_timeout(h.now);
    assert!(h.control.poll_job().is_none(), "not due yet");
    h.now = 1_000;
    h.control.handle_timeout(h.now);
    h.run_jobs();
    assert_eq!(
        h.notices(),
        [
            Notice::EndSessionsOf("alice".into()),
            Notice::EndSessionsOf("bob".into())
        ]
    );
    // Nothing new: nothing said.
    h.now = 2_000;
    h.control.handle_timeout(h.now);
    h.run_jobs();
    assert_eq!(h.notices(), []);
    assert_eq!(h.control.poll_timeout(), Some(3_000));
}

#[test]
fn a_lockout_by_count_also_ends_the_accounts_sessions() {
    let mut s = settings();
    s.lock_after_failures = 1;
    let mut h = Harness::with(s);
    h.add_user("alice", "hunter22");
    h.control.handle_timeout(0);
    h.run_jobs();
    assert_eq!(h.login("alice", "wrong-one"), Err(REFUSED.into()));
    h.now = 1_000;
    h.control.handle_timeout(h.now);
    h.run_jobs();
    assert_eq!(h.notices(), [Notice::EndSessionsOf("alice".into())]);
}

// --- the job boundary ------------------------------------------------------------------

#[test]
fn a_job_the_pool_refuses_is_answered_unavailable_and_frees_its_hash_slot() {
    let mut s = settings();
    s.max_concurrent = 1;
    s.max_queued = 1;
    let mut h = Harness::with(s);
    h.add_user("alice", "hunter22");
    let first = h.send(login("alice", "hunter22"));
    let lookup = h.control.poll_job().expect("lookup");
    h.control.handle_job_done(lookup.run(), h.now);
    let verify = h.control.poll_job().expect("verify");
    assert!(verify.hashes());
    h.control.handle_job_done(verify.refused(), h.now);
    assert_eq!(h.reply_to(first), Reply::Unavailable);
    assert_eq!(h.control.jobs_in_flight(), 0);
    // The slot is free: the next login is checked, not "busy".
    assert_eq!(h.login("alice", "hunter22"), Ok(user("alice")));
    // A refused revocation read is tried again a period later.
    h.control.handle_timeout(h.now);
    let read = h.control.poll_job().expect("revocation read");
    h.control.handle_job_done(read.refused(), h.now);
    assert_eq!(h.control.poll_timeout(), Some(h.now + 1_000));
}

#[test]
fn jobs_and_their_results_cross_threads() {
    fn send<T: Send>() {}
    send::<Job>();
    send::<JobDone>();
    let mut h = Harness::new();
    h.add_user("alice", "hunter22");
    let origin = h.send(login("alice", "hunter22"));
    while let Some(job) = h.control.poll_job() {
        let done = std::thread::spawn(move || job.run())
            .join()
            .expect("job thread");
        h.control.handle_job_done(done, h.now);
    }
    assert_eq!(h.reply_to(origin), Reply::User(Ok(user("alice"))));
}

#[test]
fn a_job_shows_no_password_in_debug_output() {
    let mut h = Harness::new();
    h.add_user("alice", "hunter22");
    let _ = h.send(login("alice", "sekrit-password"));
    let lookup = h.control.poll_job().expect("lookup");
    h.control.handle_job_done(lookup.run(), h.now);
    let verify = h.control.poll_job().expect("verify");
    let shown = format!("{verify:?}");
    assert!(shown.contains("verify"), "{shown}");
    assert!(!shown.contains("sekrit"), "{shown}");
    assert!(!shown.contains("alice"), "{shown}");
}

// --- admin ---------------------------------------------------------------------------------

fn session(core: u16, slot: u32, user: &str) -> crate::admin::SessionInfo {
    crate::admin::SessionInfo {
        id: crate::admin::SessionId {
            core,
            slot,
            generation: 1,
        },
        user: Some(user.into()),
        source: ip("192.0.2.9"),
        game: None,
        watching: false,
        idle_ms: 0,
        connected_ms: 0,
    }
}

#[test]
fn an_admin_session_list_gathers_every_core_and_a_silent_core_does_not_hold_it_forever() {
    let mut h = Harness::new();
    let origin = h.send(Request::AdminSessions);
    let Some(Notice::ReportSessions { query }) = h.notices().pop() else {
        panic!("no report asked for");
    };
    // Core 1 answers first; the list waits for core 0.
    h.send(Request::SessionsReport {
        query,
        sessions: vec![session(1, 3, "bob")],
    });
    assert!(h.control.poll_reply().is_none());
    h.send(Request::SessionsReport {
        query,
        sessions: vec![session(0, 9, "alice")],
    });
    match h.reply_to(origin) {
        Reply::Sessions(list) => {
            let users: Vec<_> = list.iter().filter_map(|s| s.user.clone()).collect();
            assert_eq!(users, ["alice", "bob"], "sorted by core and slot");
        }
        other => panic!("{other:?}"),
    }
    // A core that never reports: the list comes at the deadline with what came.
    let origin = h.send(Request::AdminSessions);
    let Some(Notice::ReportSessions { query }) = h.notices().pop() else {
        panic!("no report asked for");
    };
    h.send(Request::SessionsReport {
        query,
        sessions: vec![session(0, 1, "carol")],
    });
    assert!(h
        .control
        .poll_timeout()
        .is_some_and(|t| t <= h.now + super::admin::SESSIONS_WAIT_MS));
    h.now += super::admin::SESSIONS_WAIT_MS;
    h.control.handle_timeout(h.now);
    assert!(matches!(h.reply_to(origin), Reply::Sessions(l) if l.len() == 1));
    // A late report for an answered list is ignored.
    h.send(Request::SessionsReport {
        query,
        sessions: vec![session(1, 1, "late")],
    });
    assert!(h.control.poll_reply().is_none());
}

#[test]
fn kicks_broadcasts_and_drains_go_to_the_cores_with_their_text_cleaned() {
    let mut h = Harness::new();
    let id = crate::admin::SessionId {
        core: 1,
        slot: 2,
        generation: 3,
    };
    assert_eq!(
        h.ask(Request::AdminKick {
            session: id,
            reason: "spam\x1b[2J".into()
        }),
        Reply::Done(Ok(()))
    );
    assert_eq!(
        h.ask(Request::AdminBroadcast {
            text: "back soon\x07".into()
        }),
        Reply::Done(Ok(()))
    );
    assert_eq!(
        h.ask(Request::AdminBroadcast {
            text: "\x1b\x07".into()
        }),
        Reply::Done(Err("Nothing to send.".into()))
    );
    assert_eq!(h.ask(Request::AdminDrain { on: true }), Reply::Done(Ok(())));
    assert_eq!(
        h.notices(),
        [
            Notice::Kick {
                session: id,
                reason: "spam[2J".into()
            },
            Notice::Broadcast("back soon".into()),
            Notice::Drain(true),
        ]
    );
}

#[test]
fn an_admin_lock_stores_the_reason_and_ends_the_sessions_with_it() {
    let mut h = Harness::new();
    h.add_user("alice", "hunter22");
    let lock = Request::AdminLock {
        name: "alice".into(),
        locked: true,
        reason: Some("cheating".into()),
    };
    assert_eq!(h.ask(lock), Reply::Done(Ok(())));
    let stored = h.store.get("alice").expect("read").expect("account");
    assert!(stored.locked);
    assert_eq!(stored.lock_reason.as_deref(), Some("cheating"));
    assert_eq!(
        h.notices(),
        [Notice::LockedOut {
            name: "alice".into(),
            reason: Some("cheating".into())
        }]
    );
    let unlock = Request::AdminLock {
        name: "alice".into(),
        locked: false,
        reason: None,
    };
    assert_eq!(h.ask(unlock), Reply::Done(Ok(())));
    let stored = h.store.get("alice").expect("read").expect("account");
    assert!(!stored.locked && stored.lock_reason.is_none());
    assert!(h.notices().is_empty());
    let missing = Request::AdminLock {
        name: "nobody".into(),
        locked: true,
        reason: None,
    };
    assert_eq!(
        h.ask(missing),
        Reply::Done(Err("There is no account named nobody.".into()))
    );
}

#[test]
fn a_reload_keeps_who_games_run_as() {
    let mut h = Harness::new();
    h.control.settings.games_user = Some(crate::pty::RunAs {
        uid: 5,
        gid: 60,
        name: "games".into(),
        home: "/usr/games".into(),
    });
    let before = h.control.settings.games_user.clone();
    let mut reloaded = h.control.settings.clone();
    reloaded.games_user = None; // what ControlSettings::from_config gives
    reloaded.max_pending = 7;
    h.control.reconfigure(reloaded);
    assert_eq!(h.control.settings.max_pending, 7);
    assert_eq!(
        h.control.settings.games_user.as_ref().map(|u| u.uid),
        before.map(|u| u.uid)
    );
}
