//! Options file requests through the control core, jobs run inline, on temporary data dirs.

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use crate::config::Config;
use crate::control::tests::Harness;
use crate::control::{Reply, Request};
use crate::game::rcfile::MAX_RC_BYTES;
use crate::lobby::OptionsFile;

/// The default configuration (NetHack has `%D/users/%u/nethackrc` and a template; Amulet Run
/// has no rc file) over the data dir `data`.
fn config(data: &Path) -> Arc<Config> {
    let mut config =
        Config::from_yaml(crate::config::DEFAULT_YAML, "t", Vec::new()).expect("default config");
    config.data_dir = data.to_owned();
    Arc::new(config)
}

fn read(
    h: &mut Harness,
    config: &Arc<Config>,
    name: &str,
    game: &str,
) -> Result<OptionsFile, String> {
    let request = Request::ReadOptions {
        name: name.into(),
        game_id: game.into(),
        config: config.clone(),
    };
    match h.ask(request) {
        Reply::Options(r) => r,
        other => panic!("answered {other:?}"),
    }
}

fn write(h: &mut Harness, config: &Arc<Config>, name: &str, text: &str) -> Result<(), String> {
    let request = Request::WriteOptions {
        name: name.into(),
        game_id: "nethack".into(),
        config: config.clone(),
        text: text.into(),
    };
    match h.ask(request) {
        Reply::Done(r) => r,
        other => panic!("answered {other:?}"),
    }
}

fn template(config: &Config) -> String {
    config
        .game("nethack")
        .and_then(|g| g.rc_template.clone())
        .expect("NetHack has a template")
}

#[test]
fn a_missing_file_reads_as_the_defaults_and_a_saved_one_reads_back() {
    let t = tempfile::tempdir().expect("tempdir");
    let config = config(t.path());
    let mut h = Harness::new();
    let first = read(&mut h, &config, "alice", "nethack").expect("read");
    assert_eq!(
        first,
        OptionsFile {
            text: template(&config),
            template: Some(template(&config)),
            exists: false,
        }
    );
    assert_eq!(write(&mut h, &config, "alice", "OPTIONS=!color\n"), Ok(()));
    let rc = t.path().join("users/alice/nethackrc");
    assert_eq!(
        std::fs::read_to_string(&rc).expect("written"),
        "OPTIONS=!color\n"
    );
    let again = read(&mut h, &config, "alice", "nethack").expect("read");
    assert_eq!(again.text, "OPTIONS=!color\n");
    assert!(again.exists);
    // Bytes that are not UTF-8 (written by the game, say) arrive replaced, not refused.
    std::fs::write(&rc, b"name:\xff\n").expect("write");
    let odd = read(&mut h, &config, "alice", "nethack").expect("read");
    assert_eq!(odd.text, "name:\u{fffd}\n");
}

#[test]
fn a_symlink_at_the_rc_path_is_refused_and_its_target_untouched() {
    let t = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("tempdir");
    let config = config(t.path());
    let mut h = Harness::new();
    // The user dir as a game start makes it, then a link planted in it.
    assert_eq!(write(&mut h, &config, "alice", "x\n"), Ok(()));
    let rc = t.path().join("users/alice/nethackrc");
    std::fs::remove_file(&rc).expect("rm");
    let target = outside.path().join("passwd");
    std::fs::write(&target, "root:x:0:0\n").expect("victim");
    symlink(&target, &rc).expect("link");

    let e = read(&mut h, &config, "alice", "nethack").expect_err("refused");
    assert!(e.contains("symbolic link"), "{e}");
    let e = write(&mut h, &config, "alice", "pwned\n").expect_err("refused");
    assert!(e.contains("symbolic link"), "{e}");
    assert_eq!(
        std::fs::read_to_string(&target).expect("target"),
        "root:x:0:0\n"
    );
    assert!(std::fs::symlink_metadata(&rc)
        .expect("link")
        .file_type()
        .is_symlink());
}

#[test]
fn a_symlinked_user_dir_is_refused() {
    let t = tempfile::tempdir().expect("tempdir");
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let config = config(t.path());
    let mut h = Harness::new();
    let users = t.path().join("users");
    std::fs::create_dir(&users).expect("users");
    // Writable by others, as a directory an escaped game could write to.
    std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    symlink(elsewhere.path(), users.join("alice")).expect("link");
    let e = read(&mut h, &config, "alice", "nethack").expect_err("refused");
    assert!(e.contains("symbolic link"), "{e}");
    let e = write(&mut h, &config, "alice", "x\n").expect_err("refused");
    assert!(e.contains("symbolic link"), "{e}");
    assert_eq!(
        std::fs::read_dir(elsewhere.path()).expect("dir").count(),
        0,
        "something was made through the link"
    );
}

#[test]
fn oversize_text_is_refused_at_once_and_an_oversize_file_is_not_read() {
    let t = tempfile::tempdir().expect("tempdir");
    let config = config(t.path());
    let mut h = Harness::new();
    let origin = h.send(Request::WriteOptions {
        name: "alice".into(),
        game_id: "nethack".into(),
        config: config.clone(),
        text: "x".repeat(MAX_RC_BYTES + 1),
    });
    // Answered without a job, and nothing was made.
    assert!(h.control.poll_job().is_none());
    assert!(matches!(h.reply_to(origin), Reply::Done(Err(_))));
    assert!(!t.path().join("users").exists());

    assert_eq!(write(&mut h, &config, "alice", "x\n"), Ok(()));
    let rc = t.path().join("users/alice/nethackrc");
    std::fs::write(&rc, "y".repeat(MAX_RC_BYTES + 1)).expect("grow");
    let e = read(&mut h, &config, "alice", "nethack").expect_err("refused");
    assert!(e.contains("too large"), "{e}");
}

#[test]
fn only_the_named_account_and_games_with_an_rc_file_are_reached() {
    let t = tempfile::tempdir().expect("tempdir");
    let config = config(t.path());
    let mut h = Harness::new();
    assert_eq!(write(&mut h, &config, "bob", "bob's\n"), Ok(()));
    assert_eq!(write(&mut h, &config, "alice", "alice's\n"), Ok(()));
    let bob_rc = t.path().join("users/bob/nethackrc");
    assert_eq!(std::fs::read_to_string(&bob_rc).expect("bob"), "bob's\n");
    // A name that is no account name never reaches a path.
    for name in ["../bob", "alice/../bob", "", "bob/", ".", "al ice"] {
        let e = write(&mut h, &config, name, "pwned\n").expect_err(name);
        assert!(e.contains("not logged in"), "{name:?}: {e}");
        assert!(read(&mut h, &config, name, "nethack").is_err(), "{name:?}");
    }
    assert_eq!(std::fs::read_to_string(&bob_rc).expect("bob"), "bob's\n");
    // Amulet Run has no rc file; an unknown game has none either.
    for game in ["amulet", "nosuchgame"] {
        let e = read(&mut h, &config, "alice", game).expect_err(game);
        assert_eq!(e, "This game has no options file.");
    }
    let names: Vec<_> = std::fs::read_dir(t.path().join("users"))
        .expect("users")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}
