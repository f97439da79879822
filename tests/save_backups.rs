//! `dungeongate user saves` run as the real program on temp directories: backups taken by
//! the library (as a game start takes them) are listed newest first under the account's
//! stored name; one is restored by file name or hash prefix, over an existing save only with
//! `--force`, with the save's owner and mode; mistakes are refused with a message.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use dungeongate::game::saves::{self, Outcome};

/// 2023-11-14 22:13:20 UTC, in milliseconds.
const T0: u64 = 1_700_000_000_000;

/// `dungeongate --config CFG ARGS…` with `stdin`, without `DUNGEONGATE_*` variables (the
/// server reads those as overrides; cargo may pass some of its own).
fn dg(cfg: &Path, args: &[&str], stdin: &str) -> Output {
    use std::io::Write as _;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dungeongate"));
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(|n| n.starts_with("DUNGEONGATE_")) {
            cmd.env_remove(name);
        }
    }
    let mut child = cmd
        .arg("--config")
        .arg(cfg)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run dungeongate");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A data dir, a save dir and a config whose one game saves to `<save dir>/%uid%u.sav`.
struct Setup {
    t: tempfile::TempDir,
    cfg: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("save")).unwrap();
        let cfg = t.path().join("cfg.yaml");
        std::fs::write(
            &cfg,
            format!(
                "data_dir: {data:?}\n\
                 password: {{ memory_kib: 64, iterations: 1, parallelism: 1 }}\n\
                 games:\n\
                 - id: amulet\n  name: Amulet\n  command: \"builtin:amulet\"\n  \
                   save_file: \"{save}/%uid%u.sav\"\n",
                data = t.path().join("data").display().to_string(),
                save = t.path().join("save").display(),
            ),
        )
        .unwrap();
        let s = Setup { t, cfg };
        let out = s.run(&["user", "add", "Alice"], "alice-pass-1\n");
        assert!(out.status.success(), "{}", text(&out.stderr));
        s
    }

    fn run(&self, args: &[&str], stdin: &str) -> Output {
        dg(&self.cfg, args, stdin)
    }

    /// The uid `%uid` stands for, as the CLI works it out.
    fn uid() -> u32 {
        if nix::unistd::geteuid().is_root() {
            dungeongate::pty::lookup_run_as("games")
                .expect("a games user")
                .uid
        } else {
            nix::unistd::geteuid().as_raw()
        }
    }

    fn save(&self) -> PathBuf {
        self.t
            .path()
            .join("save")
            .join(format!("{}Alice.sav", Self::uid()))
    }

    /// Write the save as the game would (owned by its user) and back it up at `at`.
    fn save_and_back_up(&self, content: &str, at: u64) -> saves::Backup {
        let save = self.save();
        std::fs::write(&save, content).unwrap();
        std::os::unix::fs::chown(&save, Some(Self::uid()), None).unwrap();
        let dir = saves::game_backups_dir(&self.t.path().join("data"), "Alice", "amulet");
        match saves::backup_save(&save, Self::uid(), &dir, 10, at).unwrap() {
            Outcome::Copied(b) => b,
            other => panic!("not copied: {other:?}"),
        }
    }
}

#[test]
fn backups_are_listed_newest_first_and_restored_over_a_save_only_when_forced() {
    let s = Setup::new();
    let first = s.save_and_back_up("the first save", T0);
    let second = s.save_and_back_up("the second save", T0 + 60_000);

    // Listed under the stored name, whatever the case typed.
    let out = s.run(&["user", "saves", "alice"], "");
    let listing = text(&out.stdout);
    assert!(out.status.success(), "{listing}{}", text(&out.stderr));
    let lines: Vec<&str> = listing.lines().collect();
    assert!(lines[0].starts_with("GAME"), "{listing}");
    assert!(
        lines[1].contains(&second.file) && lines[1].contains("2023-11-14 22:14:20"),
        "{listing}"
    );
    assert!(lines[2].contains(&first.file) && lines[2].contains(&first.sha256[..16]));
    assert!(lines[3].starts_with("2 backup(s) in "), "{listing}");

    // The save is there: refused, and left alone.
    let restore = ["user", "saves", "alice", "--restore", "amulet"];
    let out = s.run(&[&restore[..], &[first.file.as_str()]].concat(), "");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("exists") && err.contains("--force"), "{err}");
    assert_eq!(
        std::fs::read_to_string(s.save()).unwrap(),
        "the second save"
    );

    // Forced: the first backup, whole, with the save's owner and mode.
    let out = s.run(
        &[&restore[..], &[first.file.as_str(), "--force"]].concat(),
        "",
    );
    let said = text(&out.stdout);
    assert!(out.status.success(), "{said}{}", text(&out.stderr));
    assert!(
        said.contains(&first.sha256) && said.contains("replacing"),
        "{said}"
    );
    assert!(said.contains("must not be playing"), "{said}");
    assert_eq!(std::fs::read_to_string(s.save()).unwrap(), "the first save");
    let meta = std::fs::metadata(s.save()).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (Setup::uid(), 0o660));

    // With no save there (the game consumed it), by the start of its hash.
    std::fs::remove_file(s.save()).unwrap();
    let out = s.run(&[&restore[..], &[&second.sha256[..10]]].concat(), "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(s.save()).unwrap(),
        "the second save"
    );
    let names: Vec<_> = std::fs::read_dir(s.t.path().join("save"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names.len(),
        1,
        "a temporary file was left behind: {names:?}"
    );
}

#[test]
fn no_backups_unknown_names_games_and_backups_are_said_plainly() {
    let s = Setup::new();
    let out = s.run(&["user", "saves", "Alice"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("user 'Alice' has no save backups"),
        "{}",
        text(&out.stdout)
    );

    let out = s.run(&["user", "saves", "nobody"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("user 'nobody' does not exist"));

    let out = s.run(&["user", "saves", "alice", "--restore", "nethack", "x"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no game 'nethack'"),
        "{}",
        text(&out.stderr)
    );

    s.save_and_back_up("a save", T0);
    let out = s.run(
        &[
            "user",
            "saves",
            "alice",
            "--restore",
            "amulet",
            "../../etc/passwd",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no backup"),
        "{}",
        text(&out.stderr)
    );

    // --force means nothing without --restore: a usage error, not a silent no-op.
    let out = s.run(&["user", "saves", "alice", "--force"], "");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}
