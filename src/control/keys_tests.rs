//! SSH key requests against a real (temporary) store, jobs run inline.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::auth::{key_fingerprint, AuthorizedKey, MAX_KEYS_PER_ACCOUNT};
use crate::control::tests::Harness;
use crate::control::{NewKey, Reply, Request, SshAttempt, SshOutcome};
use crate::lobby::KeyEntry;

/// A well-formed ssh-ed25519 key blob made of byte `n`.
fn blob(n: u8) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&11u32.to_be_bytes());
    b.extend_from_slice(b"ssh-ed25519");
    b.extend_from_slice(&32u32.to_be_bytes());
    b.extend_from_slice(&[n; 32]);
    b
}

fn line(n: u8, comment: &str) -> String {
    format!("ssh-ed25519 {} {comment}", STANDARD.encode(blob(n)))
}

fn keys(h: &mut Harness, request: Request) -> Result<Vec<KeyEntry>, String> {
    match h.ask(request) {
        Reply::Keys(r) => r,
        other => panic!("answered {other:?}"),
    }
}

fn list(h: &mut Harness, name: &str) -> Result<Vec<KeyEntry>, String> {
    keys(h, Request::ListKeys { name: name.into() })
}

fn add(h: &mut Harness, name: &str, text: &str) -> Result<Vec<KeyEntry>, String> {
    let key = NewKey::Line(text.into());
    keys(
        h,
        Request::AddKey {
            name: name.into(),
            key,
        },
    )
}

fn remove(h: &mut Harness, name: &str, fingerprint: &str) -> Result<Vec<KeyEntry>, String> {
    let fingerprint = fingerprint.into();
    keys(
        h,
        Request::RemoveKey {
            name: name.into(),
            fingerprint,
        },
    )
}

fn key_login(h: &mut Harness, name: &str, n: u8) -> SshOutcome {
    let attempt = SshAttempt::Key {
        blob: blob(n),
        signed: true,
    };
    h.ssh(name, attempt)
}

#[test]
fn keys_are_listed_added_and_removed_on_the_named_account_only() {
    let mut h = Harness::new();
    h.add_user("Alice", "hunter22");
    h.add_user("bob", "hunter23");
    assert_eq!(list(&mut h, "alice"), Ok(vec![]));
    let after = add(&mut h, "alice", &line(1, "alice@laptop")).expect("added");
    let [k] = after.as_slice() else {
        panic!("one key expected: {after:?}");
    };
    assert_eq!(k.key_type, "ssh-ed25519");
    assert_eq!(k.fingerprint, key_fingerprint(&blob(1)));
    assert_eq!(k.comment, "alice@laptop");
    assert!(k.added_unix > 1_700_000_000, "stamped when added");
    assert_eq!(list(&mut h, "ALICE"), Ok(after.clone()));
    assert_eq!(
        list(&mut h, "bob"),
        Ok(vec![]),
        "bob's account is untouched"
    );
    let fp = k.fingerprint.clone();
    assert_eq!(remove(&mut h, "alice", &fp), Ok(vec![]));
    // Removing what is not there is no error: the key is gone either way.
    assert_eq!(remove(&mut h, "alice", &fp), Ok(vec![]));
    assert_eq!(
        h.metric(
            "auth_database_operations_total",
            &[("operation", "update"), ("status", "success")]
        ),
        3.0
    );
}

#[test]
fn a_key_added_from_the_lobby_logs_in_at_once_and_a_removed_one_no_longer_does() {
    let mut h = Harness::new();
    h.add_user("alice", "hunter22");
    assert_eq!(key_login(&mut h, "alice", 5), SshOutcome::Denied);
    add(&mut h, "alice", &line(5, "")).expect("added");
    assert!(matches!(
        key_login(&mut h, "alice", 5),
        SshOutcome::User(u) if u.name == "alice"
    ));
    remove(&mut h, "alice", &key_fingerprint(&blob(5))).expect("removed");
    assert_eq!(key_login(&mut h, "alice", 5), SshOutcome::Denied);
}

#[test]
fn garbage_private_keys_duplicates_and_a_full_account_are_refused() {
    let mut h = Harness::new();
    h.add_user("alice", "hunter22");
    let e = add(&mut h, "alice", "hello there").unwrap_err();
    assert!(
        e.starts_with("Not added: unsupported key type 'hello'"),
        "{e}"
    );
    let e = add(&mut h, "alice", "-----BEGIN OPENSSH PRIVATE KEY-----").unwrap_err();
    assert!(e.contains("private key"), "{e}");
    add(&mut h, "alice", &line(1, "")).expect("added");
    let e = add(&mut h, "alice", &line(1, "same key, other comment")).unwrap_err();
    assert!(e.contains("Already on your account: SHA256:"), "{e}");
    assert_eq!(list(&mut h, "alice").map(|k| k.len()), Ok(1));
    // Filled up (the CLI has no limit; the lobby stops at the limit).
    h.store
        .update("alice", |a| {
            for n in 2..=u8::try_from(MAX_KEYS_PER_ACCOUNT).unwrap_or(16) {
                a.keys.push(AuthorizedKey {
                    key_type: "ssh-ed25519".into(),
                    blob: blob(n),
                    comment: String::new(),
                    added_unix: 0,
                });
            }
        })
        .expect("filled");
    let e = add(&mut h, "alice", &line(99, "")).unwrap_err();
    assert!(e.contains("at most 16 keys"), "{e}");
    assert_eq!(
        list(&mut h, "alice").map(|k| k.len()),
        Ok(MAX_KEYS_PER_ACCOUNT)
    );
}

#[test]
fn a_key_offered_at_login_is_bound_with_a_note_and_garbage_is_not() {
    let mut h = Harness::new();
    h.add_user("carol", "hunter22");
    let key = NewKey::Offered(blob(9));
    let name = "carol".to_string();
    let bound = keys(&mut h, Request::AddKey { name, key }).expect("bound");
    assert_eq!(bound.len(), 1);
    assert_eq!(bound[0].comment, "bound at registration");
    assert!(matches!(key_login(&mut h, "carol", 9), SshOutcome::User(_)));
    let key = NewKey::Offered(b"\x00\x00\x00\x07ssh-dss".to_vec());
    let name = "carol".to_string();
    assert!(keys(&mut h, Request::AddKey { name, key }).is_err());
}

#[test]
fn an_account_deleted_meanwhile_is_said_so() {
    let mut h = Harness::new();
    assert_eq!(
        list(&mut h, "nobody"),
        Err("Your account no longer exists.".into())
    );
    assert_eq!(
        add(&mut h, "nobody", &line(1, "")),
        Err("Your account no longer exists.".into())
    );
}

#[test]
fn a_key_request_the_pool_refuses_is_answered_unavailable() {
    let mut h = Harness::new();
    h.add_user("alice", "hunter22");
    let origin = h.send(Request::ListKeys {
        name: "alice".into(),
    });
    let job = h.control.poll_job().expect("a store job");
    h.control.handle_job_done(job.refused(), 0);
    assert_eq!(h.reply_to(origin), Reply::Unavailable);
}
