//! Turn a configured game into a concrete process spec for one player: placeholders
//! (`%u` user, `%uid` the numeric uid the game runs as, `%d` user dir, `%r` rc file, `%D` data
//! dir), per-user directory and rc file, the environment (nothing of the server's own leaks
//! in), and the built-in games.

use super::userfiles::{self, UserFileError};
use crate::config::{Config, GameCommand, GameConfig};
use crate::pty::{Rlimits, RunAs, SpawnSpec, WinSize};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

/// The terminal the player asked for.
#[derive(Debug, Clone)]
pub struct TerminalInfo {
    /// TERM from pty-req (or an env request).
    pub term: String,
    /// LANG and LC_* the client sent.
    pub locale: Vec<(String, String)>,
    pub size: WinSize,
}

/// Whether `game` can be started on this machine (its program exists).
pub fn is_available(game: &GameConfig) -> bool {
    match &game.command {
        GameCommand::Program(p) => p.is_file(),
        GameCommand::Builtin(_) => true,
    }
}

/// The values placeholders stand for, for one player's start of one game.
pub(super) struct Vars<'a> {
    /// `%u`: the player's name.
    pub user: &'a str,
    /// `%uid`: the numeric uid the game runs as (NetHack names its saves `<uid><name>`).
    pub uid: u32,
    /// `%d`: the player's directory (empty when the game has none).
    pub user_dir: &'a str,
    /// `%r`: the player's rc file (empty when the game has none).
    pub rc_file: &'a str,
    /// `%D`: the data directory, absolute.
    pub data_dir: &'a str,
}

/// The uid a game runs as: `run_as`, or the server's own when it runs games as itself.
pub(super) fn game_uid(run_as: Option<&RunAs>) -> u32 {
    run_as.map_or_else(|| nix::unistd::geteuid().as_raw(), |r| r.uid)
}

/// Expand placeholders in `template`. `%uid` is read before `%u`: `%uid%u` is NetHack's
/// save name, a uid followed by the player's name.
pub(super) fn expand(template: &str, v: &Vars<'_>) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if let Some(rest) = chars.as_str().strip_prefix("uid") {
            out.push_str(&v.uid.to_string());
            chars = rest.chars();
            continue;
        }
        match chars.next() {
            Some('u') => out.push_str(v.user),
            Some('d') => out.push_str(v.user_dir),
            Some('r') => out.push_str(v.rc_file),
            Some('D') => out.push_str(v.data_dir),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// Where one player's files of a game are, placeholders expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPaths {
    /// The data directory, absolute (`%D`).
    pub data_dir: String,
    /// The per-user directory (`user_dir`, `%d`), if the game has one.
    pub user_dir: Option<String>,
    /// The rc file (`rc_file`, `%r`), if the game has one.
    pub rc_file: Option<String>,
}

/// Where `user`'s files of `game` are: what a game start makes and the options editor edits.
pub fn user_paths(
    config: &Config,
    game: &GameConfig,
    user: &str,
    run_as: Option<&RunAs>,
) -> io::Result<UserPaths> {
    let data_dir = absolute(&config.data_dir)?.to_string_lossy().into_owned();
    let mut vars = Vars {
        user,
        uid: game_uid(run_as),
        user_dir: "",
        rc_file: "",
        data_dir: &data_dir,
    };
    let user_dir = game.user_dir.as_deref().map(|t| expand(t, &vars));
    vars.user_dir = user_dir.as_deref().unwrap_or_default();
    let rc_file = game.rc_file.as_deref().map(|t| expand(t, &vars));
    Ok(UserPaths {
        data_dir,
        user_dir,
        rc_file,
    })
}

/// Build the spec for `user` playing `game`, creating the per-user directory and rc file.
/// Blocking (file system): call it off the reactor.
pub fn prepare(
    config: &Config,
    game: &GameConfig,
    user: &str,
    terminal: &TerminalInfo,
    run_as: Option<&RunAs>,
) -> io::Result<SpawnSpec> {
    let UserPaths {
        data_dir: data_dir_s,
        user_dir,
        rc_file,
    } = user_paths(config, game, user, run_as)?;
    let mut vars = Vars {
        user,
        uid: game_uid(run_as),
        user_dir: "",
        rc_file: "",
        data_dir: &data_dir_s,
    };
    if let Some(dir) = &user_dir {
        userfiles::ensure_user_dir(Path::new(dir), run_as).map_err(refused)?;
    }
    let user_dir_s = user_dir.clone().unwrap_or_default();
    vars.user_dir = &user_dir_s;
    if let (Some(rc), Some(template)) = (&rc_file, &game.rc_template) {
        userfiles::create_rc_file(Path::new(rc), template, run_as).map_err(refused)?;
    }
    let rc_s = rc_file.unwrap_or_default();
    vars.rc_file = &rc_s;
    let x = |t: &str| expand(t, &vars);

    let (program, mut args): (PathBuf, Vec<OsString>) = match &game.command {
        GameCommand::Program(p) => (p.clone(), Vec::new()),
        GameCommand::Builtin(name) => (
            std::env::current_exe()?,
            vec!["builtin-game".into(), name.into()],
        ),
    };
    args.extend(game.args.iter().map(|a| OsString::from(x(a))));

    let home = user_dir
        .clone()
        .or_else(|| run_as.map(|r| r.home.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "/".into());
    let mut env: Vec<(OsString, OsString)> = vec![
        ("TERM".into(), terminal.term.clone().into()),
        ("USER".into(), user.into()),
        ("LOGNAME".into(), user.into()),
        ("HOME".into(), home.into()),
        (
            "PATH".into(),
            "/usr/local/bin:/usr/bin:/bin:/usr/games".into(),
        ),
    ];
    for (k, v) in &terminal.locale {
        env.push((k.into(), v.into()));
    }
    for (k, v) in &game.env {
        env.retain(|(ek, _)| ek != k.as_str());
        env.push((k.into(), x(v).into()));
    }
    let cwd = game
        .workdir
        .as_deref()
        .map(|w| PathBuf::from(x(w)))
        .or_else(|| user_dir.map(PathBuf::from));
    let l = &config.game_limits;
    Ok(SpawnSpec {
        program,
        args,
        env,
        cwd,
        size: terminal.size,
        run_as: run_as.cloned(),
        rlimits: Rlimits {
            core_bytes: l.core_bytes,
            cpu_seconds: l.cpu_seconds,
            nproc: l.processes,
            address_space_bytes: l.address_space_bytes,
        },
    })
}

fn absolute(p: &Path) -> io::Result<PathBuf> {
    if p.is_absolute() {
        Ok(p.to_owned())
    } else {
        Ok(std::env::current_dir()?.join(p))
    }
}

/// A per-user file that could not be made safely: the game does not start, and the caller
/// logs the reason (a planted link names itself in the message).
fn refused(e: UserFileError) -> io::Error {
    io::Error::other(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_expand_and_unknown_ones_stay() {
        let vars = Vars {
            user: "alice",
            uid: 5,
            user_dir: "/u",
            rc_file: "/u/rc",
            data_dir: "/data",
        };
        assert_eq!(
            expand("-u %u -d %d -r %r -D %D %% %x %", &vars),
            "-u alice -d /u -r /u/rc -D /data % %x %"
        );
        // `%uid` is the uid, before `%u` is the name: NetHack's save name, and at the end.
        assert_eq!(expand("save/%uid%u.gz", &vars), "save/5alice.gz");
        assert_eq!(expand("%ui %u%uid", &vars), "alicei alice5");
        assert_eq!(expand("%%uid", &vars), "%uid");
    }

    #[test]
    fn spec_has_a_clean_environment_with_game_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::from_yaml(crate::config::DEFAULT_YAML, "t", Vec::new()).unwrap();
        config.data_dir = dir.path().to_owned();
        let game = config.games[0].clone();
        let term = TerminalInfo {
            term: "xterm-256color".into(),
            locale: vec![("LANG".into(), "C.UTF-8".into())],
            size: WinSize {
                cols: 80,
                rows: 24,
                px_width: 0,
                px_height: 0,
            },
        };
        let spec = prepare(&config, &game, "alice", &term, None).unwrap();
        let env: std::collections::HashMap<_, _> = spec.env.iter().cloned().collect();
        let user_dir = dir.path().join("users/alice");
        assert_eq!(env[&OsString::from("HOME")], user_dir.as_os_str());
        assert_eq!(env[&OsString::from("TERM")], "xterm-256color");
        assert_eq!(env[&OsString::from("LANG")], "C.UTF-8");
        let rc = user_dir.join("nethackrc");
        assert_eq!(
            env[&OsString::from("NETHACKOPTIONS")],
            OsString::from(format!("@{}", rc.display()))
        );
        assert!(rc.is_file());
        assert_eq!(
            spec.args,
            vec![OsString::from("-u"), OsString::from("alice")]
        );
        assert_eq!(spec.cwd.as_deref(), Some(user_dir.as_path()));
    }
}
