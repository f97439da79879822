//! The rc file for the options editor, on temporary directories: what is read and written,
//! and everything a games user could have planted at or on the way to it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::game::userfiles::ensure_user_dir;
use nix::unistd::Uid;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::time::{Duration, Instant};

/// The default configuration (NetHack with `%D/users/%u` and `%d/nethackrc`, Amulet Run
/// without an rc file) over a temporary data dir.
fn config(data: &Path) -> Config {
    let mut config =
        Config::from_yaml(crate::config::DEFAULT_YAML, "t", Vec::new()).expect("default config");
    config.data_dir = data.to_owned();
    config
}

fn game<'a>(config: &'a Config, id: &str) -> &'a GameConfig {
    config.game(id).expect("game")
}

/// The files in `dir` (names only).
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A file outside the data dir that a planted link points at: root's own, mode 0600.
fn victim(outside: &Path) -> PathBuf {
    let target = outside.join("shadow");
    std::fs::write(&target, "root:secret\n").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    target
}

fn assert_untouched(target: &Path) {
    assert_eq!(std::fs::read_to_string(target).unwrap(), "root:secret\n");
    let meta = std::fs::metadata(target).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.uid(), Uid::effective().as_raw());
}

#[test]
fn a_written_file_reads_back_and_replaces_the_old_one_with_nothing_left_over() {
    let t = tempfile::tempdir().unwrap();
    let config = config(t.path());
    let nh = game(&config, "nethack");
    // No file yet, no user dir yet: nothing to read, and reading makes nothing.
    assert_eq!(read(&config, nh, "alice", None).unwrap(), None);
    assert!(!t.path().join("users").exists());

    write(&config, nh, "alice", b"OPTIONS=color\n", None).unwrap();
    let user_dir = t.path().join("users/alice");
    let rc = user_dir.join("nethackrc");
    assert_eq!(std::fs::read(&rc).unwrap(), b"OPTIONS=color\n");
    assert_eq!(
        std::fs::metadata(&user_dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(
        std::fs::metadata(&rc).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        read(&config, nh, "alice", None).unwrap().as_deref(),
        Some(&b"OPTIONS=color\n"[..])
    );

    let inode = std::fs::metadata(&rc).unwrap().ino();
    write(&config, nh, "alice", b"OPTIONS=!color\n# mine\n", None).unwrap();
    assert_eq!(
        read(&config, nh, "alice", None).unwrap().as_deref(),
        Some(&b"OPTIONS=!color\n# mine\n"[..])
    );
    // A new file took the old one's name; no temporary file is left behind.
    assert_ne!(std::fs::metadata(&rc).unwrap().ino(), inode);
    assert_eq!(names(&user_dir), vec!["nethackrc".to_string()]);
    // Another player's file is another file.
    assert_eq!(read(&config, nh, "bob", None).unwrap(), None);
}

#[test]
fn a_game_without_an_rc_file_has_nothing_to_edit() {
    let t = tempfile::tempdir().unwrap();
    let config = config(t.path());
    let amulet = game(&config, "amulet");
    assert!(matches!(
        read(&config, amulet, "alice", None),
        Err(RcError::NoRcFile(_))
    ));
    assert!(matches!(
        write(&config, amulet, "alice", b"x\n", None),
        Err(RcError::NoRcFile(_))
    ));
}

#[test]
fn a_symlink_at_the_rc_path_is_neither_read_nor_written_through() {
    let t = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let target = victim(outside.path());
    let config = config(t.path());
    let nh = game(&config, "nethack");
    let user_dir = t.path().join("users/alice");
    ensure_user_dir(&user_dir, None).unwrap();
    let rc = user_dir.join("nethackrc");
    symlink(&target, &rc).unwrap();

    let e = read(&config, nh, "alice", None).unwrap_err();
    assert!(
        matches!(e, RcError::Unsafe(UserFileError::Symlink { .. })),
        "{e}"
    );
    assert!(e.player_message().contains("symbolic link"));
    let e = write(&config, nh, "alice", b"pwned\n", None).unwrap_err();
    assert!(
        matches!(e, RcError::Unsafe(UserFileError::Symlink { .. })),
        "{e}"
    );
    assert_untouched(&target);
    // The link is still a link, and nothing else appeared.
    assert!(std::fs::symlink_metadata(&rc)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(names(&user_dir), vec!["nethackrc".to_string()]);
    assert_eq!(names(outside.path()), vec!["shadow".to_string()]);
}

#[test]
fn a_symlinked_user_dir_is_refused_and_its_target_gets_nothing() {
    let t = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let config = config(t.path());
    let nh = game(&config, "nethack");
    // `users/` writable by others: a link in it is not the operator's.
    let users = t.path().join("users");
    std::fs::create_dir(&users).unwrap();
    std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(elsewhere.path().join("nethackrc"), "theirs\n").unwrap();
    symlink(elsewhere.path(), users.join("alice")).unwrap();

    let e = read(&config, nh, "alice", None).unwrap_err();
    assert!(
        matches!(e, RcError::Unsafe(UserFileError::Symlink { .. })),
        "{e}"
    );
    let e = write(&config, nh, "alice", b"pwned\n", None).unwrap_err();
    assert!(
        matches!(e, RcError::Unsafe(UserFileError::Symlink { .. })),
        "{e}"
    );
    assert_eq!(names(elsewhere.path()), vec!["nethackrc".to_string()]);
    assert_eq!(
        std::fs::read_to_string(elsewhere.path().join("nethackrc")).unwrap(),
        "theirs\n"
    );
}

#[test]
fn an_oversize_file_is_not_read_and_oversize_text_not_written() {
    let t = tempfile::tempdir().unwrap();
    let config = config(t.path());
    let nh = game(&config, "nethack");
    let big = vec![b'x'; MAX_RC_BYTES + 1];
    let e = write(&config, nh, "alice", &big, None).unwrap_err();
    assert!(matches!(e, RcError::TooLarge { .. }), "{e}");
    assert!(!t.path().join("users/alice/nethackrc").exists());
    // Exactly the cap is fine both ways.
    let full = vec![b'y'; MAX_RC_BYTES];
    write(&config, nh, "alice", &full, None).unwrap();
    assert_eq!(read(&config, nh, "alice", None).unwrap(), Some(full));
    // Grown past it (by the game, say): refused, and left as it is.
    std::fs::write(t.path().join("users/alice/nethackrc"), &big).unwrap();
    let e = read(&config, nh, "alice", None).unwrap_err();
    assert!(matches!(e, RcError::TooLarge { .. }), "{e}");
    assert!(e.player_message().contains("too large"));
    assert_eq!(
        std::fs::metadata(t.path().join("users/alice/nethackrc"))
            .unwrap()
            .len(),
        big.len() as u64
    );
}

#[test]
fn a_fifo_or_a_directory_at_the_rc_path_is_refused_without_blocking() {
    let t = tempfile::tempdir().unwrap();
    let config = config(t.path());
    let nh = game(&config, "nethack");
    let user_dir = t.path().join("users/alice");
    ensure_user_dir(&user_dir, None).unwrap();
    let rc = user_dir.join("nethackrc");
    nix::unistd::mkfifo(&rc, Mode::from_bits_truncate(0o600)).unwrap();
    let started = Instant::now();
    let e = read(&config, nh, "alice", None).unwrap_err();
    assert!(
        matches!(e, RcError::Unsafe(UserFileError::Unsafe { .. })),
        "{e}"
    );
    // A FIFO with no writer would block a plain open for ever.
    assert!(started.elapsed() < Duration::from_secs(10));
    let e = write(&config, nh, "alice", b"x\n", None).unwrap_err();
    assert!(
        matches!(e, RcError::Unsafe(UserFileError::Unsafe { .. })),
        "{e}"
    );
    std::fs::remove_file(&rc).unwrap();

    std::fs::create_dir(&rc).unwrap();
    let e = read(&config, nh, "alice", None).unwrap_err();
    assert!(matches!(e, RcError::Unsafe(_)), "{e}");
    let e = write(&config, nh, "alice", b"x\n", None).unwrap_err();
    assert!(matches!(e, RcError::Unsafe(_)), "{e}");
    assert!(rc.is_dir());
    assert_eq!(names(&user_dir), vec!["nethackrc".to_string()]);
}

#[test]
fn a_hard_link_at_the_rc_path_is_not_read() {
    let t = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let target = victim(outside.path());
    let config = config(t.path());
    let nh = game(&config, "nethack");
    let user_dir = t.path().join("users/alice");
    ensure_user_dir(&user_dir, None).unwrap();
    std::fs::hard_link(&target, user_dir.join("nethackrc")).unwrap();
    let e = read(&config, nh, "alice", None).unwrap_err();
    assert!(
        matches!(e, RcError::Unsafe(UserFileError::Unsafe { .. })),
        "{e}"
    );
    // Writing replaces the name, never the linked file.
    write(&config, nh, "alice", b"mine\n", None).unwrap();
    assert_untouched(&target);
    assert_eq!(
        std::fs::read_to_string(user_dir.join("nethackrc")).unwrap(),
        "mine\n"
    );
}

#[test]
fn files_belong_to_the_games_user_and_a_file_of_anyone_else_is_not_read() {
    // Changing owners needs root.
    if !Uid::effective().is_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let config = config(t.path());
    let nh = game(&config, "nethack");
    let games = RunAs {
        uid: 4242,
        gid: 4243,
        name: "games-for-a-test".into(),
        home: "/".into(),
    };
    write(&config, nh, "alice", b"OPTIONS=color\n", Some(&games)).unwrap();
    let rc = t.path().join("users/alice/nethackrc");
    let meta = std::fs::metadata(&rc).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (4242, 4243));
    let dir = std::fs::metadata(t.path().join("users/alice")).unwrap();
    assert_eq!(dir.uid(), 4242);
    assert_eq!(
        read(&config, nh, "alice", Some(&games)).unwrap().as_deref(),
        Some(&b"OPTIONS=color\n"[..])
    );
    // Root's file at that name (a hard link to one, say): not shown to the player.
    std::os::unix::fs::chown(&rc, Some(0), Some(0)).unwrap();
    let e = read(&config, nh, "alice", Some(&games)).unwrap_err();
    assert!(
        matches!(e, RcError::Unsafe(UserFileError::Unsafe { .. })),
        "{e}"
    );
}
