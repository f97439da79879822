//! Save backups on temp directories: patterns, naming, dedup, pruning, refusals, restore.

use super::catalog::{extension, file_name, is_backup_name};
use super::pattern::checked;
use super::*;
use crate::config::Config;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;

/// 2023-11-14 22:13:20 UTC, in milliseconds.
const T0: u64 = 1_700_000_000_000;

fn me() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// A save directory and a backups directory under one temp dir.
struct Fixture {
    _t: tempfile::TempDir,
    save: std::path::PathBuf,
    backups: std::path::PathBuf,
}

fn fixture() -> Fixture {
    let t = tempfile::tempdir().unwrap();
    let save_dir = t.path().join("save");
    std::fs::create_dir(&save_dir).unwrap();
    Fixture {
        save: save_dir.join("5alice.gz"),
        backups: t.path().join("data/saves/alice/nethack"),
        _t: t,
    }
}

fn backup(f: &Fixture, keep: usize, at: u64) -> Result<Outcome, SaveError> {
    backup_save(&f.save, me(), &f.backups, keep, at)
}

fn listed(f: &Fixture) -> Vec<Backup> {
    let data = f.backups.ancestors().nth(3).unwrap();
    list_game(data, "alice", "nethack").unwrap()
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn patterns_must_be_absolute_name_the_player_and_use_known_placeholders() {
    for ok in [
        "/var/games/nethack/save/%uid%u.gz",
        "%D/saves/%u.sav",
        "/srv/100%%/%u",
    ] {
        assert_eq!(check_pattern(ok, None), Ok(()), "{ok}");
    }
    // A per-player directory names the player too.
    assert_eq!(check_pattern("%d/amulet.save", Some("%D/users/%u")), Ok(()));
    let shared = Some("%D/common");
    let refused = [
        ("save/%u.gz", None, "not an absolute path"),
        ("%d/%u.save", None, "no user_dir"),
        ("/var/games/../%u", None, ".. component"),
        ("/var/save/%r%u", None, "%r, which is not"),
        ("/var/save/%u%", None, "uses %,"),
        ("%%/%u", None, "not an absolute path"),
        ("/var/save/%u/", None, "names a directory"),
        ("/var/save/%uid.gz", None, "does not name the player"),
        ("%D/shared.save", shared, "does not name the player"),
        ("%d/amulet.save", shared, "does not name the player"),
    ];
    for (pattern, user_dir, why) in refused {
        let e = check_pattern(pattern, user_dir).unwrap_err();
        assert!(e.contains(why), "{pattern}: {e}");
    }
}

#[test]
fn a_bad_save_file_is_refused_when_the_configuration_loads() {
    let yaml =
        crate::config::DEFAULT_YAML.replacen("/var/games/nethack/save/%uid%u.gz", "save/%u.gz", 1);
    assert_ne!(yaml, crate::config::DEFAULT_YAML);
    let e = Config::from_yaml(&yaml, "t", Vec::new()).unwrap_err();
    assert!(e.to_string().contains("games[0].save_file"), "{e}");
    let yaml = crate::config::DEFAULT_YAML.replacen(
        "command: /usr/games/nethack",
        "command: /usr/games/nethack\n    save_backups_kept: 0",
        1,
    );
    let e = Config::from_yaml(&yaml, "t", Vec::new()).unwrap_err();
    assert!(e.to_string().contains("games[0].save_backups_kept"), "{e}");
}

#[test]
fn save_paths_expand_per_player_and_uid() {
    let t = tempfile::tempdir().unwrap();
    let mut config = Config::from_yaml(crate::config::DEFAULT_YAML, "t", Vec::new()).unwrap();
    config.data_dir = t.path().to_owned();
    let nethack = config.game("nethack").unwrap();
    assert_eq!(
        nethack.save_backups_kept,
        crate::config::DEFAULT_SAVE_BACKUPS_KEPT
    );
    assert_eq!(
        save_path(&config, nethack, "alice", 5).unwrap().unwrap(),
        Path::new("/var/games/nethack/save/5alice.gz")
    );
    let amulet = config.game("amulet").unwrap();
    assert_eq!(
        save_path(&config, amulet, "bob", 5).unwrap().unwrap(),
        t.path().join("users/bob/amulet.save")
    );
    let mut plain = amulet.clone();
    plain.save_file = None;
    assert_eq!(save_path(&config, &plain, "bob", 5).unwrap(), None);
}

#[test]
fn expanded_paths_are_checked_again() {
    assert!(checked("/var/save/5alice.gz".into()).is_ok());
    for bad in [
        "save/5alice.gz",
        "/var/save/../x",
        "/var/save/",
        "/",
        "/a/\0b",
    ] {
        assert!(
            matches!(checked(bad.into()), Err(SaveError::BadPath { .. })),
            "{bad:?}"
        );
    }
}

#[test]
fn backup_names_carry_time_hash_and_the_save_extension() {
    let sha = "0123456789abcdef".repeat(4);
    let name = file_name(T0 + 999, &sha, "gz");
    assert_eq!(name, "20231114T221320Z-0123456789abcdef.gz");
    assert!(is_backup_name(&name));
    assert_eq!(extension("5alice.gz"), "gz");
    assert_eq!(extension("amulet.save"), "save");
    assert_eq!(extension("alice"), "save");
    assert_eq!(extension(".hidden"), "save");
    assert_eq!(extension("x.tar.gz"), "gz");
    assert_eq!(extension("x.we ird"), "save");
    for not in [
        "20231114T221320Z-0123456789abcdef",
        "20231114T221320Z-0123456789ABCDEF.gz",
        "20231114T221320-0123456789abcdef.gz",
        "../20231114T221320Z-0123456789abcdef.gz",
        "20231114T221320Z-0123456789abcdef.gz.json",
        ".tmp-backup-1-0",
    ] {
        assert!(!is_backup_name(not), "{not}");
    }
}

#[test]
fn no_save_and_no_save_directory_are_nothing_to_do() {
    let f = fixture();
    assert_eq!(backup(&f, 10, T0).unwrap(), Outcome::NoSave);
    let gone = f.save.parent().unwrap().join("missing/5alice.gz");
    assert_eq!(
        backup_save(&gone, me(), &f.backups, 10, T0).unwrap(),
        Outcome::NoSave
    );
}

#[test]
fn a_save_is_copied_once_per_content_with_a_sidecar_in_a_private_directory() {
    let f = fixture();
    std::fs::write(&f.save, b"first save").unwrap();
    let Outcome::Copied(b) = backup(&f, 10, T0).unwrap() else {
        panic!("not copied");
    };
    let sha = format!(
        "{:x}",
        <sha2::Sha256 as sha2::Digest>::digest(b"first save")
    );
    assert_eq!(b.sha256, sha);
    assert_eq!(b.size, 10);
    assert_eq!(b.file, format!("20231114T221320Z-{}.gz", &sha[..16]));
    assert_eq!(b.source, f.save.to_string_lossy());
    let copy = f.backups.join(&b.file);
    assert_eq!(std::fs::read(&copy).unwrap(), b"first save");
    assert_eq!(std::fs::metadata(&copy).unwrap().mode() & 0o777, 0o640);
    assert_eq!(std::fs::metadata(&f.backups).unwrap().mode() & 0o777, 0o700);
    let sidecar = std::fs::read_to_string(f.backups.join(format!("{}.json", b.file))).unwrap();
    assert!(
        sidecar.contains(&sha) && sidecar.contains("5alice.gz"),
        "{sidecar}"
    );
    assert_eq!(listed(&f), vec![b.clone()]);

    // The same content again, later: no second copy; nothing temporary left behind.
    assert_eq!(backup(&f, 10, T0 + 60_000).unwrap(), Outcome::Unchanged);
    assert_eq!(names_in(&f.backups).len(), 2, "{:?}", names_in(&f.backups));

    // New content: a new backup, listed first.
    std::fs::write(&f.save, b"second save").unwrap();
    let Outcome::Copied(b2) = backup(&f, 10, T0 + 120_000).unwrap() else {
        panic!("not copied");
    };
    assert_eq!(listed(&f), vec![b2, b]);
}

#[test]
fn only_the_newest_backups_are_kept() {
    let f = fixture();
    for i in 0..5u64 {
        std::fs::write(&f.save, format!("save number {i}")).unwrap();
        assert!(matches!(
            backup(&f, 3, T0 + i * 1000).unwrap(),
            Outcome::Copied(_)
        ));
    }
    let kept = listed(&f);
    assert_eq!(kept.len(), 3);
    let times: Vec<u64> = kept.iter().map(|b| b.time_unix_ms).collect();
    assert_eq!(times, vec![T0 + 4000, T0 + 3000, T0 + 2000]);
    // Files and sidecars of the pruned ones are gone.
    assert_eq!(names_in(&f.backups).len(), 6, "{:?}", names_in(&f.backups));
    // An old content (pruned, or just not the newest) is copied again.
    std::fs::write(&f.save, "save number 3").unwrap();
    assert!(matches!(
        backup(&f, 3, T0 + 9000).unwrap(),
        Outcome::Copied(_)
    ));
}

#[test]
fn a_link_at_the_save_name_is_refused_and_its_target_not_copied() {
    let f = fixture();
    let secret = f.save.parent().unwrap().parent().unwrap().join("secret");
    std::fs::write(&secret, b"root's secret").unwrap();
    std::os::unix::fs::symlink(&secret, &f.save).unwrap();
    let e = backup(&f, 10, T0).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert!(listed(&f).is_empty());
}

#[test]
fn a_save_directory_reached_through_a_planted_link_is_refused() {
    let f = fixture();
    let base = f.save.parent().unwrap().parent().unwrap();
    // A directory anyone can write to (as /var/games/nethack is to the games group), with
    // `save` replaced by a link to somewhere else.
    let open_dir = base.join("open");
    std::fs::create_dir(&open_dir).unwrap();
    std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::os::unix::fs::symlink(f.save.parent().unwrap(), open_dir.join("save")).unwrap();
    std::fs::write(&f.save, b"a save").unwrap();
    let via_link = open_dir.join("save/5alice.gz");
    let e = backup_save(&via_link, me(), &f.backups, 10, T0).unwrap_err();
    assert!(matches!(e, SaveError::Dir(_)), "{e}");
    assert!(e.to_string().contains("symbolic link"), "{e}");
}

#[test]
fn fifos_directories_and_hard_links_are_refused_without_blocking() {
    let f = fixture();
    nix::unistd::mkfifo(&f.save, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let e = backup(&f, 10, T0).unwrap_err();
    assert!(e.to_string().contains("not a regular file"), "{e}");
    std::fs::remove_file(&f.save).unwrap();

    std::fs::create_dir(&f.save).unwrap();
    let e = backup(&f, 10, T0).unwrap_err();
    assert!(e.to_string().contains("not a regular file"), "{e}");
    std::fs::remove_dir(&f.save).unwrap();

    let other = f.save.with_file_name("elsewhere");
    std::fs::write(&other, b"x").unwrap();
    std::fs::hard_link(&other, &f.save).unwrap();
    let e = backup(&f, 10, T0).unwrap_err();
    assert!(e.to_string().contains("hard links"), "{e}");
    assert!(listed(&f).is_empty());
}

#[test]
fn a_save_of_another_user_is_refused() {
    let f = fixture();
    std::fs::write(&f.save, b"x").unwrap();
    let e = backup_save(&f.save, me().wrapping_add(4242), &f.backups, 10, T0).unwrap_err();
    assert!(e.to_string().contains("belongs to uid"), "{e}");
}

#[test]
fn a_save_over_the_size_cap_is_refused_and_nothing_is_written() {
    let f = fixture();
    // Sparse: costs no disk.
    let file = std::fs::File::create(&f.save).unwrap();
    file.set_len(MAX_SAVE_BYTES + 1).unwrap();
    let e = backup(&f, 10, T0).unwrap_err();
    assert!(e.to_string().contains("larger than"), "{e}");
    assert!(!f.backups.exists() || names_in(&f.backups).is_empty());
    // A copy that grows past the cap while being read is cut off the same way.
    let mut src = std::io::repeat(b'x').take(1025);
    let e = super::backup::copy_hashing_capped(&mut src, &mut std::io::sink(), &f.save, 1024)
        .unwrap_err();
    assert!(e.to_string().contains("larger than"), "{e}");
    let mut src = std::io::repeat(b'x').take(1024);
    let (_, n) =
        super::backup::copy_hashing_capped(&mut src, &mut std::io::sink(), &f.save, 1024).unwrap();
    assert_eq!(n, 1024);
}

use std::io::Read as _;

#[test]
fn a_backup_is_restored_whole_with_the_save_mode_and_the_directory_group() {
    let f = fixture();
    std::fs::write(&f.save, b"the good save").unwrap();
    let Outcome::Copied(b) = backup(&f, 10, T0).unwrap() else {
        panic!("not copied");
    };
    // The game restored it and deleted it, as NetHack does.
    std::fs::remove_file(&f.save).unwrap();
    let done = restore(&f.backups, &b, &f.save, me(), false).unwrap();
    assert_eq!(
        done,
        Restored {
            path: f.save.clone(),
            replaced: false
        }
    );
    assert_eq!(std::fs::read(&f.save).unwrap(), b"the good save");
    let meta = std::fs::metadata(&f.save).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o660);
    let dir_meta = std::fs::metadata(f.save.parent().unwrap()).unwrap();
    assert_eq!(meta.gid(), dir_meta.gid());
    assert_eq!(meta.uid(), me());

    // A save is there now: refused, unless forced.
    std::fs::write(&f.save, b"a newer save").unwrap();
    let e = restore(&f.backups, &b, &f.save, me(), false).unwrap_err();
    assert!(matches!(e, SaveError::Exists { .. }), "{e}");
    assert_eq!(std::fs::read(&f.save).unwrap(), b"a newer save");
    let done = restore(&f.backups, &b, &f.save, me(), true).unwrap();
    assert!(done.replaced);
    assert_eq!(std::fs::read(&f.save).unwrap(), b"the good save");
    assert_eq!(names_in(f.save.parent().unwrap()), vec!["5alice.gz"]);
}

#[test]
fn a_backup_that_no_longer_matches_its_hash_is_not_restored() {
    let f = fixture();
    std::fs::write(&f.save, b"the good save").unwrap();
    let Outcome::Copied(b) = backup(&f, 10, T0).unwrap() else {
        panic!("not copied");
    };
    std::fs::remove_file(&f.save).unwrap();
    std::fs::write(f.backups.join(&b.file), b"tampered").unwrap();
    let e = restore(&f.backups, &b, &f.save, me(), false).unwrap_err();
    assert!(matches!(e, SaveError::Corrupt { .. }), "{e}");
    // Nothing at the save's name, and no temporary file left in the save directory.
    assert!(names_in(f.save.parent().unwrap()).is_empty());
    // A name that is not a backup's is never opened.
    let mut bad = b.clone();
    bad.file = "../../secret".into();
    let e = restore(&f.backups, &bad, &f.save, me(), false).unwrap_err();
    assert!(e.to_string().contains("not a backup's name"), "{e}");
}

#[test]
fn a_players_backups_of_every_game_are_listed_newest_first() {
    let t = tempfile::tempdir().unwrap();
    let save_dir = t.path().join("save");
    std::fs::create_dir(&save_dir).unwrap();
    let data = t.path().join("data");
    for (i, game) in ["nethack", "amulet", "nethack"].into_iter().enumerate() {
        let save = save_dir.join(format!("{game}.sav"));
        std::fs::write(&save, format!("{game} {i}")).unwrap();
        let dir = game_backups_dir(&data, "alice", game);
        assert!(matches!(
            backup_save(&save, me(), &dir, 10, T0 + i as u64 * 1000).unwrap(),
            Outcome::Copied(_)
        ));
    }
    // Not a game's directory: ignored.
    std::fs::create_dir(user_backups_dir(&data, "alice").join("Not A Game")).unwrap();
    let all = list_user(&data, "alice").unwrap();
    let order: Vec<(&str, u64)> = all
        .iter()
        .map(|b| (b.game.as_str(), b.time_unix_ms))
        .collect();
    assert_eq!(
        order,
        vec![
            ("nethack", T0 + 2000),
            ("amulet", T0 + 1000),
            ("nethack", T0)
        ]
    );
    assert!(list_user(&data, "nobody").unwrap().is_empty());
}
