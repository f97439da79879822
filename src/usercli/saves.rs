//! `dungeongate user saves NAME [--restore GAME BACKUP [--force]]`: the backups the server
//! took of a player's saves before each game start ([`crate::game::saves`]), and putting one
//! back. Restoring is an operator's action: it is done only here, by whoever can run this
//! command on the server (root or the server's own user), never from the lobby.

use std::io::Write;
use std::path::Path;

use anyhow::{anyhow, bail, Context as _};

use crate::auth::{validate_name, Store};
use crate::config::Config;
use crate::game::saves::{self, Backup, SaveError};

/// Shortest SHA-256 prefix accepted in place of a backup's file name: short enough to type,
/// long enough not to pick the wrong one by accident.
const MIN_HASH_PREFIX: usize = 8;

/// `dungeongate user saves …`.
#[derive(Debug, clap::Args)]
pub struct SavesArgs {
    /// Account name.
    pub name: String,
    /// Copy backup BACKUP (its file name, or the start of its SHA-256) of game GAME back to
    /// the game's save file. The player must not be playing GAME meanwhile.
    #[arg(long, num_args = 2, value_names = ["GAME", "BACKUP"])]
    pub restore: Option<Vec<String>>,
    /// With --restore: replace the save file that is there now.
    #[arg(long, requires = "restore")]
    pub force: bool,
}

/// Runs `user saves` with the configuration (where the data directory and the games' save
/// files are).
pub fn run(args: SavesArgs, config: &Config) -> anyhow::Result<()> {
    let data_dir = std::path::absolute(&config.data_dir)
        .with_context(|| format!("data_dir {}", config.data_dir.display()))?;
    let name = account_name(&args.name, &data_dir)?;
    let mut out = std::io::stdout().lock();
    match args.restore.as_deref() {
        None => list(&mut out, &data_dir, &name),
        Some([game, which]) => {
            let uid = games_uid(config)?;
            restore(
                &mut out, config, &data_dir, &name, game, which, uid, args.force,
            )
        }
        Some(_) => bail!("--restore takes GAME and BACKUP"),
    }
}

/// The account's name as stored (names are case-insensitive; saves and backups use the
/// stored spelling). A name with backups but no account (deleted since) is taken as given.
fn account_name(given: &str, data_dir: &Path) -> anyhow::Result<String> {
    validate_name(given)
        .map_err(|e| anyhow!("name '{}' is not valid: {e}", given.escape_debug()))?;
    let accounts = crate::datadir::accounts_dir(data_dir);
    if accounts.is_dir() {
        let store = Store::open(&accounts)
            .with_context(|| format!("opening account store {}", accounts.display()))?;
        if let Some(account) = store.get(given)? {
            return Ok(account.name);
        }
    }
    if saves::user_backups_dir(data_dir, given).is_dir() {
        return Ok(given.to_owned());
    }
    bail!("user '{given}' does not exist")
}

/// The uid games run as, which `%uid` in a save path stands for: `run_as` when this runs as
/// root (as the server does), else our own (a server that runs games as itself).
fn games_uid(config: &Config) -> anyhow::Result<u32> {
    let euid = nix::unistd::geteuid();
    if euid.is_root() {
        let r = crate::pty::lookup_run_as(&config.run_as)
            .with_context(|| format!("run_as user {:?}", config.run_as))?;
        Ok(r.uid)
    } else {
        Ok(euid.as_raw())
    }
}

/// The backups of every game, newest first.
fn list(out: &mut impl Write, data_dir: &Path, name: &str) -> anyhow::Result<()> {
    let dir = saves::user_backups_dir(data_dir, name);
    let all = saves::list_user(data_dir, name)?;
    if all.is_empty() {
        writeln!(
            out,
            "user '{name}' has no save backups (none in {})",
            dir.display()
        )?;
        return Ok(());
    }
    write_table(out, &all)?;
    writeln!(
        out,
        "{} backup(s) in {}, newest first; restore one with \
         `dungeongate user saves {name} --restore GAME FILE` while {name} is not playing",
        all.len(),
        dir.display()
    )?;
    Ok(())
}

/// The listing's table.
fn write_table(out: &mut impl Write, all: &[Backup]) -> std::io::Result<()> {
    let width = all.iter().map(|b| b.game.len()).max().unwrap_or(0).max(4);
    writeln!(
        out,
        "{:<width$}  {:<19}  {:>9}  {:<16}  FILE",
        "GAME", "TAKEN (UTC)", "SIZE", "SHA-256"
    )?;
    for b in all {
        writeln!(
            out,
            "{:<width$}  {:<19}  {:>9}  {:<16}  {}",
            b.game,
            crate::date::utc_date_time(b.time_unix_ms / 1000),
            b.size,
            b.sha256.get(..16).unwrap_or(&b.sha256),
            b.file
        )?;
    }
    Ok(())
}

/// Restore `which` of `name`'s backups of `game` to the game's save file.
#[allow(clippy::too_many_arguments)]
fn restore(
    out: &mut impl Write,
    config: &Config,
    data_dir: &Path,
    name: &str,
    game_id: &str,
    which: &str,
    uid: u32,
    force: bool,
) -> anyhow::Result<()> {
    let game = config
        .game(game_id)
        .ok_or_else(|| anyhow!("no game '{}' in the configuration", game_id.escape_debug()))?;
    let save = saves::save_path(config, game, name, uid)?.ok_or_else(|| {
        anyhow!("game '{game_id}' has no save_file in the configuration: nowhere to restore to")
    })?;
    let backups = saves::list_game(data_dir, name, game_id)?;
    let backup = pick(&backups, which).map_err(|e| anyhow!("{e} (see `user saves {name}`)"))?;
    let dir = saves::game_backups_dir(data_dir, name, game_id);
    let done = match saves::restore(&dir, backup, &save, uid, force) {
        Ok(done) => done,
        Err(SaveError::Exists { path }) => bail!(
            "{} exists: {name} has a save of {game_id} now. Add --force to replace it \
             (first make sure {name} is not playing {game_id})",
            path.display()
        ),
        Err(e) => return Err(e.into()),
    };
    writeln!(
        out,
        "restored {} (sha256 {}, {} bytes, taken {} UTC) to {}{}",
        backup.file,
        backup.sha256,
        backup.size,
        crate::date::utc_date_time(backup.time_unix_ms / 1000),
        done.path.display(),
        if done.replaced {
            ", replacing the save that was there"
        } else {
            ""
        }
    )?;
    writeln!(
        out,
        "{name} must not be playing {game_id} now: a running game overwrites it when it saves"
    )?;
    Ok(())
}

/// The backup named by its file name or by the start of its SHA-256 (at least
/// [`MIN_HASH_PREFIX`] hex digits, matching one backup only).
fn pick<'a>(backups: &'a [Backup], which: &str) -> Result<&'a Backup, String> {
    if let Some(b) = backups.iter().find(|b| b.file == which) {
        return Ok(b);
    }
    let hex = which.len() >= MIN_HASH_PREFIX && which.bytes().all(|c| c.is_ascii_hexdigit());
    if hex {
        let prefix = which.to_ascii_lowercase();
        let mut found = backups.iter().filter(|b| b.sha256.starts_with(&prefix));
        match (found.next(), found.next()) {
            (Some(b), None) => return Ok(b),
            (Some(_), Some(_)) => {
                return Err(format!(
                    "{which} is the start of more than one backup's SHA-256; give the file name"
                ))
            }
            (None, _) => {}
        }
    }
    Err(format!("no backup {} of that game", which.escape_debug()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup(file: &str, sha256: &str) -> Backup {
        Backup {
            game: "nethack".into(),
            file: file.into(),
            sha256: sha256.into(),
            size: 10,
            time_unix_ms: 1_700_000_000_000,
            source: "/save/5alice.gz".into(),
        }
    }

    #[test]
    fn a_backup_is_picked_by_file_name_or_an_unambiguous_hash_prefix() {
        let list = [
            backup(
                "20231114T221320Z-aaaaaaaa11111111.gz",
                &"aaaaaaaa11".repeat(7)[..64],
            ),
            backup(
                "20231114T221321Z-aaaaaaaa22222222.gz",
                &"aaaaaaaa22".repeat(7)[..64],
            ),
            backup(
                "20231114T221322Z-bbbbbbbb33333333.gz",
                &"bbbbbbbb33".repeat(7)[..64],
            ),
        ];
        assert_eq!(
            pick(&list, "20231114T221321Z-aaaaaaaa22222222.gz")
                .unwrap()
                .file,
            list[1].file
        );
        assert_eq!(pick(&list, "BBBBBBBB").unwrap().file, list[2].file);
        assert!(pick(&list, "aaaaaaaa")
            .unwrap_err()
            .contains("more than one"));
        assert!(pick(&list, "bbbb").unwrap_err().contains("no backup"));
        assert!(pick(&list, "../../etc/passwd")
            .unwrap_err()
            .contains("no backup"));
    }

    #[test]
    fn the_listing_shows_game_time_size_hash_prefix_and_file() {
        let list = [backup(
            "20231114T221320Z-0123456789abcdef.gz",
            &"0123456789abcdef".repeat(4),
        )];
        let mut buf = Vec::new();
        write_table(&mut buf, &list).unwrap();
        let text = String::from_utf8(buf).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("GAME "), "{text}");
        assert_eq!(
            lines[1],
            "nethack  2023-11-14 22:13:20         10  0123456789abcdef  \
             20231114T221320Z-0123456789abcdef.gz"
        );
    }
}
