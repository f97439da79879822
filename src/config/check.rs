//! `dungeongate check-config`: past a configuration that parses, what `serve` would find on
//! this machine — who games run as, whether the data and recording directories exist or can
//! be made and written, whether the host key and account store can be read, which games the
//! lobby will show as unavailable and which will fail to start. Nothing is created or
//! changed: writability is asked of the kernel (`eaccess`), never tried with a file.
//!
//! Everything is checked as the user running `check-config`, which is what `serve` started by
//! that user would see: run it as the user that runs the server (root on a public server).
//!
//! Levels follow `serve`: an error is what would stop it starting; a warning is what it starts
//! with but does not work (a game shown as unavailable, a game that cannot start, games that
//! go unrecorded).

use super::{Config, GameCommand, GameConfig};
use nix::unistd::{AccessFlags, Gid, Uid, User};
use std::fmt;
use std::fs;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Checked and fine.
    Ok,
    /// `serve` starts, but something will not work.
    Warning,
    /// `serve` would refuse to start.
    Error,
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Finding {
    pub level: Level,
    /// What was checked: `data_dir`, `run_as`, `game nethack`.
    pub subject: String,
    pub text: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            Level::Ok => "ok",
            Level::Warning => "warning",
            Level::Error => "error",
        };
        write!(f, "{level}: {}: {}", self.subject, self.text)
    }
}

/// Everything `check` found, in the order checked.
#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    /// Findings at `level`.
    pub fn count(&self, level: Level) -> usize {
        self.findings.iter().filter(|f| f.level == level).count()
    }

    /// The last line: what it all means for `serve`.
    pub fn summary(&self) -> String {
        let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
        let (errors, warnings) = (self.count(Level::Error), self.count(Level::Warning));
        if errors > 0 {
            format!(
                "{}, {}: serve would not start",
                plural(errors, "error"),
                plural(warnings, "warning")
            )
        } else if warnings > 0 {
            format!("{}: serve would start", plural(warnings, "warning"))
        } else {
            "no problems found".to_owned()
        }
    }

    fn push(&mut self, level: Level, subject: impl Into<String>, text: impl Into<String>) {
        self.findings.push(Finding {
            level,
            subject: subject.into(),
            text: text.into(),
        });
    }
}

/// Check what `serve` would find on this machine with `config`.
pub fn check(config: &Config) -> Report {
    let mut report = Report::default();
    let player = games_identity(config, &mut report);
    data_dir(config, &mut report);
    recording_dir(config, &mut report);
    for game in &config.games {
        check_game(game, player.as_ref(), &mut report);
    }
    report
}

/// The user games run as, for the permission checks on their programs.
#[derive(Debug, Clone)]
struct Identity {
    name: String,
    uid: u32,
    /// Every group it is in (primary and supplementary).
    groups: Vec<u32>,
}

impl Identity {
    /// The user running this process (who games run as when the server is not root).
    fn current() -> Identity {
        let uid = nix::unistd::geteuid();
        let mut groups: Vec<u32> = nix::unistd::getgroups()
            .unwrap_or_default()
            .into_iter()
            .map(Gid::as_raw)
            .collect();
        groups.push(nix::unistd::getegid().as_raw());
        Identity {
            name: user_name(uid),
            uid: uid.as_raw(),
            groups,
        }
    }

    /// Whether the permission bits of `m` grant `bit` (1 execute/search, 4 read) to this
    /// user: the owner's bits for the owner, the group's for a member, the others' for the
    /// rest, as the kernel decides. ACLs are not read (rare on game binaries); root may
    /// execute a file with any execute bit and enter any directory.
    fn allowed(&self, m: &fs::Metadata, bit: u32) -> bool {
        let mode = m.permissions().mode();
        if self.uid == 0 {
            return bit != 1 || m.is_dir() || mode & 0o111 != 0;
        }
        let shift = if m.uid() == self.uid {
            6
        } else if self.groups.contains(&m.gid()) {
            3
        } else {
            0
        };
        (mode >> shift) & bit != 0
    }

    /// Whether this user could start `program`: every directory on the way searchable, the
    /// file executable, and readable too when it is a script (the interpreter reads it).
    fn may_execute(&self, program: &Path) -> Result<(), String> {
        let real = fs::canonicalize(program).map_err(|e| format!("{}: {e}", program.display()))?;
        let mut dirs: Vec<&Path> = real.ancestors().skip(1).collect();
        dirs.reverse();
        for dir in dirs {
            let m = fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            if !self.allowed(&m, 1) {
                return Err(format!(
                    "user {} may not enter {} (mode {:o})",
                    self.name,
                    dir.display(),
                    m.permissions().mode() & 0o7777
                ));
            }
        }
        let m = fs::metadata(&real).map_err(|e| format!("{}: {e}", real.display()))?;
        let mode = m.permissions().mode() & 0o7777;
        if !self.allowed(&m, 1) {
            return Err(format!(
                "user {} may not execute {} (mode {mode:o})",
                self.name,
                real.display()
            ));
        }
        if is_script(&real) && !self.allowed(&m, 4) {
            return Err(format!(
                "{} is a script and user {} may not read it (mode {mode:o})",
                real.display(),
                self.name
            ));
        }
        Ok(())
    }
}

/// Whether `path` starts with `#!` (unreadable here: taken as not a script).
fn is_script(path: &Path) -> bool {
    let mut start = [0u8; 2];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut start))
        .is_ok_and(|()| &start == b"#!")
}

fn user_name(uid: Uid) -> String {
    match User::from_uid(uid) {
        Ok(Some(u)) => u.name,
        _ => format!("#{uid}"),
    }
}

/// Who games would run as, by the same decision `serve` makes at start.
fn games_identity(config: &Config, report: &mut Report) -> Option<Identity> {
    let euid = nix::unistd::geteuid();
    let root = euid.is_root();
    report.push(
        Level::Ok,
        "checked as",
        format!(
            "user {} (uid {euid}): what serve started by this user would find",
            user_name(euid)
        ),
    );
    let external = config
        .games
        .iter()
        .any(|g| matches!(g.command, GameCommand::Program(_)));
    match crate::reactor::games_user(config) {
        Err(e) => {
            report.push(Level::Error, "run_as", e.to_string());
            // Not root, the games would run as this user once allowed: check them as it.
            (!root).then(Identity::current)
        }
        Ok(Some(run_as)) => match crate::pty::game_groups(Some(&run_as)) {
            Ok(groups) => {
                report.push(
                    Level::Ok,
                    "run_as",
                    format!(
                        "games run as {} (uid {}, gid {})",
                        run_as.name, run_as.uid, run_as.gid
                    ),
                );
                Some(Identity {
                    name: run_as.name,
                    uid: run_as.uid,
                    groups: groups.unwrap_or_else(|| vec![run_as.gid]),
                })
            }
            // A spawn refuses this identity: the server starts, no game does.
            Err(e) => {
                report.push(
                    Level::Warning,
                    "run_as",
                    format!("{e}: every game will fail to start"),
                );
                None
            }
        },
        Ok(None) => {
            let me = Identity::current();
            let why = if external {
                "games_as_server_user: true"
            } else {
                "only built-in games"
            };
            report.push(
                Level::Ok,
                "run_as",
                format!(
                    "not running as root: games run as {}, the server's own user ({why})",
                    me.name
                ),
            );
            // Unused now, but a server started as root would stop on it.
            if let Err(e) = crate::pty::lookup_run_as(&config.run_as) {
                report.push(
                    Level::Warning,
                    "run_as",
                    format!("{e}: serve started as root would refuse to start"),
                );
            }
            Some(me)
        }
    }
}

/// The data directory (made when missing), the host key and the account store in it.
fn data_dir(config: &Config, report: &mut Report) {
    match dir_state(&config.data_dir) {
        Err(e) => {
            report.push(Level::Error, "data_dir", e);
            return;
        }
        Ok(text) => report.push(Level::Ok, "data_dir", text),
    }
    let data_dir =
        std::path::absolute(&config.data_dir).unwrap_or_else(|_| config.data_dir.clone());
    let key = data_dir.join(crate::datadir::HOST_KEY_FILE);
    if key.exists() {
        match crate::datadir::read_host_key(&key) {
            Ok(k) => report.push(
                Level::Ok,
                "data_dir",
                format!("host key {} ({})", key.display(), k.fingerprint_sha256()),
            ),
            Err(e) => report.push(Level::Error, "data_dir", e),
        }
    }
    // LMDB opens its directory and files read-write (and makes them when missing, which the
    // data directory check above covers).
    let accounts = crate::datadir::accounts_dir(&data_dir);
    if accounts.is_dir() {
        let files = ["data.mdb", "lock.mdb"].map(|f| accounts.join(f));
        let problem = std::iter::once(writable(&accounts).err())
            .chain(files.iter().filter(|f| f.exists()).map(|f| {
                access(
                    f,
                    AccessFlags::R_OK | AccessFlags::W_OK,
                    "readable and writable",
                )
                .err()
            }))
            .flatten()
            .next();
        match problem {
            Some(e) => report.push(Level::Error, "data_dir", format!("account store: {e}")),
            None => report.push(
                Level::Ok,
                "data_dir",
                format!("account store {} is writable", accounts.display()),
            ),
        }
    }
}

/// The recordings' directory, when recording is on. A recording that cannot be written
/// never stops a game, nor the server: a warning.
fn recording_dir(config: &Config, report: &mut Report) {
    let rec = &config.recording;
    if !rec.enabled {
        report.push(Level::Ok, "recording", "off (recording.enabled: false)");
        return;
    }
    match dir_state(&rec.dir) {
        Ok(text) => report.push(Level::Ok, "recording dir", text),
        Err(e) => report.push(
            Level::Warning,
            "recording dir",
            format!("{e}: games will not be recorded"),
        ),
    }
}

/// A configured game: available in the lobby (by the lobby's own test), and startable.
fn check_game(game: &GameConfig, player: Option<&Identity>, report: &mut Report) {
    let subject = format!("game {}", game.id);
    let GameCommand::Program(program) = &game.command else {
        report.push(Level::Ok, subject, format!("{}: built in", game.name));
        return;
    };
    if !crate::game::is_available(game) {
        report.push(
            Level::Warning,
            subject,
            format!(
                "{} will show as unavailable in the lobby: {} {}",
                game.name,
                program.display(),
                missing(program)
            ),
        );
        return;
    }
    let text = match player.map(|who| (who, who.may_execute(program))) {
        None => format!(
            "{}: {} exists (who may run it is not known: see run_as)",
            game.name,
            program.display()
        ),
        Some((who, Ok(()))) => format!(
            "{}: {} can be run by {}",
            game.name,
            program.display(),
            who.name
        ),
        Some((_, Err(why))) => {
            report.push(
                Level::Warning,
                subject,
                format!(
                    "{} shows in the lobby but will fail to start: {why}",
                    game.name
                ),
            );
            return;
        }
    };
    report.push(Level::Ok, subject, text);
}

/// Why a game's program is not a file.
fn missing(program: &Path) -> String {
    match fs::metadata(program) {
        Err(e) if e.kind() == ErrorKind::NotFound => "does not exist".to_owned(),
        Err(e) => format!("cannot be reached ({e})"),
        Ok(m) if m.is_dir() => "is a directory".to_owned(),
        Ok(_) => "is not a regular file".to_owned(),
    }
}

/// What `serve` finds at `dir`, which it makes (with missing parents) when missing: writable
/// when it exists, else the nearest part of the path that exists must be a directory this
/// user may create entries in.
fn dir_state(dir: &Path) -> Result<String, String> {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    let shown = dir.display();
    match fs::metadata(&dir) {
        Ok(m) if m.is_dir() => writable(&dir).map(|()| format!("{shown} is writable")),
        Ok(_) => Err(format!("{shown} exists and is not a directory")),
        Err(e) if is_absent(&e) => {
            let base = nearest_existing(&dir)?;
            writable(&base)
                .map(|()| {
                    format!(
                        "{shown} does not exist yet; it will be created in {}",
                        base.display()
                    )
                })
                .map_err(|e| format!("{shown} does not exist and cannot be created: {e}"))
        }
        Err(e) => Err(format!("{shown}: {e}")),
    }
}

/// A path that is not there: missing, or a file where a directory would be on the way.
fn is_absent(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory)
}

/// The nearest ancestor of `dir` that exists, which must be a directory.
fn nearest_existing(dir: &Path) -> Result<PathBuf, String> {
    let shown = dir.display();
    for base in dir.ancestors().skip(1) {
        match fs::metadata(base) {
            Ok(m) if m.is_dir() => return Ok(base.to_owned()),
            Ok(_) => {
                return Err(format!(
                    "{shown} cannot be created: {} is not a directory",
                    base.display()
                ))
            }
            Err(e) if is_absent(&e) => continue,
            Err(e) => {
                return Err(format!(
                    "{shown} cannot be created: {}: {e}",
                    base.display()
                ))
            }
        }
    }
    Err(format!("{shown} cannot be created: no part of it exists"))
}

/// Whether this process may create and remove entries in `dir`.
fn writable(dir: &Path) -> Result<(), String> {
    access(dir, AccessFlags::W_OK | AccessFlags::X_OK, "writable")
}

/// Asks the kernel, with this process's effective ids, whether `path` allows `mode`.
fn access(path: &Path, mode: AccessFlags, what: &str) -> Result<(), String> {
    nix::unistd::eaccess(path, mode).map_err(|errno| {
        format!(
            "{} is not {what} by {}: {}",
            path.display(),
            user_name(nix::unistd::geteuid()),
            errno.desc()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// An unprivileged user that owns nothing here, in no group that does.
    fn stranger() -> Identity {
        Identity {
            name: "stranger".into(),
            uid: 54_321,
            groups: vec![54_321],
        }
    }

    fn file(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let p = dir.join(name);
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn a_missing_directory_is_reported_creatable_and_is_not_created() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("a/b/c");
        let text = dir_state(&dir).unwrap();
        assert!(text.contains("does not exist yet"), "{text}");
        assert!(text.contains(&t.path().display().to_string()), "{text}");
        assert!(!t.path().join("a").exists());
        assert!(dir_state(t.path()).unwrap().contains("is writable"));
    }

    #[test]
    fn a_directory_under_a_file_cannot_be_made() {
        let t = tempfile::tempdir().unwrap();
        let f = file(t.path(), "plain", "x", 0o644);
        let e = dir_state(&f.join("data")).unwrap_err();
        assert!(e.contains("is not a directory"), "{e}");
        let e = dir_state(&f).unwrap_err();
        assert!(e.contains("exists and is not a directory"), "{e}");
    }

    #[test]
    fn execute_permission_follows_owner_group_and_other_bits() {
        let t = tempfile::tempdir().unwrap();
        fs::set_permissions(t.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let other_x = file(t.path(), "ox", "\x7fELF", 0o755);
        let owner_only = file(t.path(), "uo", "\x7fELF", 0o700);
        let no_x = file(t.path(), "nx", "\x7fELF", 0o644);
        let script = file(t.path(), "sh", "#!/bin/sh\n", 0o711);
        let who = stranger();
        assert_eq!(who.may_execute(&other_x), Ok(()));
        let e = who.may_execute(&owner_only).unwrap_err();
        assert!(e.contains("may not execute") && e.contains("700"), "{e}");
        assert!(who.may_execute(&no_x).is_err());
        let e = who.may_execute(&script).unwrap_err();
        assert!(e.contains("script"), "{e}");
        // No execute bit at all stops every user, root included.
        assert!(Identity::current().may_execute(&no_x).is_err());
        let owner = Identity {
            uid: fs::metadata(&owner_only).unwrap().uid(),
            ..stranger()
        };
        assert_eq!(owner.may_execute(&owner_only), Ok(()));
    }

    #[test]
    fn a_directory_on_the_way_must_be_searchable() {
        let t = tempfile::tempdir().unwrap();
        let inner = t.path().join("private");
        fs::create_dir(&inner).unwrap();
        let game = file(&inner, "game", "\x7fELF", 0o755);
        fs::set_permissions(&inner, fs::Permissions::from_mode(0o700)).unwrap();
        let e = stranger().may_execute(&game).unwrap_err();
        assert!(e.contains("may not enter") && e.contains("private"), "{e}");
    }

    fn config_with(yaml: &str) -> Config {
        Config::from_yaml(yaml, "test", Vec::new()).unwrap()
    }

    #[test]
    fn a_missing_program_is_a_warning_that_names_the_game_unavailable() {
        let t = tempfile::tempdir().unwrap();
        let c = config_with(&format!(
            "data_dir: {:?}\ngames_as_server_user: true\ngames:\n  - {{ id: gone, name: Gone, \
             command: /nonexistent/gone }}\n  - {{ id: amulet, name: Amulet, command: \
             \"builtin:amulet\" }}\n",
            t.path().join("data")
        ));
        let mut report = Report::default();
        check_game(&c.games[0], Some(&stranger()), &mut report);
        check_game(&c.games[1], Some(&stranger()), &mut report);
        let [gone, amulet] = &report.findings[..] else {
            panic!("{:?}", report.findings)
        };
        assert_eq!(gone.level, Level::Warning);
        assert_eq!(
            gone.to_string(),
            "warning: game gone: Gone will show as unavailable in the lobby: \
             /nonexistent/gone does not exist"
        );
        assert_eq!(amulet.level, Level::Ok);
        assert_eq!(report.summary(), "1 warning: serve would start");
    }

    #[test]
    fn check_leaves_nothing_behind_and_an_unusable_data_dir_is_an_error() {
        let t = tempfile::tempdir().unwrap();
        let c = config_with(&format!(
            "data_dir: {:?}\ngames: [{{ id: amulet, name: Amulet, command: \"builtin:amulet\" }}]\n",
            t.path().join("data")
        ));
        let report = check(&c);
        assert!(!t.path().join("data").exists());
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.subject == "data_dir" && f.level == Level::Ok),
            "{:?}",
            report.findings
        );
        let blocker = file(t.path(), "blocker", "x", 0o644);
        let c = config_with(&format!(
            "data_dir: {:?}\ngames: [{{ id: amulet, name: Amulet, command: \"builtin:amulet\" }}]\n",
            blocker.join("data")
        ));
        let report = check(&c);
        let f = report
            .findings
            .iter()
            .find(|f| f.subject == "data_dir")
            .unwrap();
        assert_eq!(f.level, Level::Error, "{f}");
        assert!(report.summary().ends_with("serve would not start"));
    }
}
