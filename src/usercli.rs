//! `dungeongate user …`: account administration on the same LMDB store the running server
//! uses (LMDB allows both processes at once; the server sees each change on its next lookup).
//!
//! Passwords are read from standard input when it is not a terminal (first line, for
//! scripts), otherwise prompted for twice without echo.

pub mod saves;

use std::io::{BufRead as _, IsTerminal as _, Read as _};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _};
use zeroize::Zeroizing;

use crate::auth::{
    key_fingerprint, now_unix, parse_authorized_key, validate_email, validate_name,
    validate_password, Account, AuthError, PasswordHasher, PasswordParams, Store, MAX_KEY_LINE_LEN,
};

/// `dungeongate user <command>`.
#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Create an account (asks for its password).
    Add {
        /// Account name: a letter, then letters and digits (at most 20).
        name: String,
        /// Contact e-mail address.
        #[arg(long)]
        email: Option<String>,
        /// Make the account an admin.
        #[arg(long)]
        admin: bool,
    },
    /// Set an account's password (asks for it).
    Passwd {
        /// Account name.
        name: String,
    },
    /// Delete an account.
    Del {
        /// Account name.
        name: String,
    },
    /// List all accounts.
    List,
    /// Grant (or with --revoke, remove) admin rights.
    Admin {
        /// Account name.
        name: String,
        /// Remove admin rights instead of granting them.
        #[arg(long)]
        revoke: bool,
    },
    /// Lock an account: it can no longer log in.
    Lock {
        /// Account name.
        name: String,
    },
    /// Unlock a locked account.
    Unlock {
        /// Account name.
        name: String,
    },
    /// Manage an account's SSH public keys.
    Key {
        /// Key subcommand.
        #[command(subcommand)]
        cmd: KeyCommand,
    },
    /// List the backups of an account's game saves, newest first, or restore one
    /// (--restore GAME BACKUP; the player must not be playing).
    Saves(saves::SavesArgs),
}

/// `dungeongate user key <command>`.
#[derive(Debug, clap::Subcommand)]
pub enum KeyCommand {
    /// Add the public key(s) in FILE (an OpenSSH .pub or authorized_keys file; "-" = stdin).
    Add {
        /// Account name.
        name: String,
        /// File with one key per line; "-" reads standard input.
        file: PathBuf,
    },
    /// Remove a key, given its SHA256:… fingerprint or its number from `key list`.
    Del {
        /// Account name.
        name: String,
        /// `SHA256:…` fingerprint or 1-based index.
        fingerprint_or_index: String,
    },
    /// List an account's keys.
    List {
        /// Account name.
        name: String,
    },
}

/// Runs one `user` subcommand against the store in `store_dir`, hashing new passwords with
/// `params`.
pub fn run(cmd: UserCommand, store_dir: &Path, params: PasswordParams) -> anyhow::Result<()> {
    let store = Store::open(store_dir)
        .with_context(|| format!("opening account store {}", store_dir.display()))?;
    let mut out = std::io::stdout().lock();
    execute(cmd, &store, params, &mut read_new_password, &mut out)
}

/// Source of a new password (the terminal/stdin in production, a fixed string in tests).
type PasswordSource<'a> = dyn FnMut() -> anyhow::Result<Zeroizing<String>> + 'a;

/// Runs one command against an open store; `new_password` supplies passwords for
/// `add`/`passwd`, `out` receives the human-readable result.
fn execute(
    cmd: UserCommand,
    store: &Store,
    params: PasswordParams,
    new_password: &mut PasswordSource<'_>,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add { name, email, admin } => {
            check_name(&name)?;
            if let Some(e) = &email {
                validate_email(e)?;
            }
            if store.get(&name)?.is_some() {
                bail!("user '{name}' already exists");
            }
            let password = new_password()?;
            validate_password(&password)?;
            let hasher = PasswordHasher::new(params)?;
            let mut account = Account::new(&name, hasher.hash(&password)?, now_unix());
            account.email = email;
            account.admin = admin;
            store.create(&account)?;
            writeln!(
                out,
                "created user '{name}'{}",
                if admin { " (admin)" } else { "" }
            )?;
        }
        UserCommand::Passwd { name } => {
            require(store, &name)?;
            let password = new_password()?;
            validate_password(&password)?;
            let phc = PasswordHasher::new(params)?.hash(&password)?;
            store.update(&name, |a| a.password_phc = phc)?;
            writeln!(out, "password changed for user '{name}'")?;
        }
        UserCommand::Del { name } => {
            store.delete(&name).map_err(not_found(&name))?;
            writeln!(out, "deleted user '{name}'")?;
        }
        UserCommand::List => {
            let accounts = store.list()?;
            write_table(out, &accounts)?;
        }
        UserCommand::Admin { name, revoke } => {
            let a = store
                .update(&name, |a| a.admin = !revoke)
                .map_err(not_found(&name))?;
            let verb = if revoke { "is no longer" } else { "is now" };
            writeln!(out, "user '{}' {verb} an admin", a.name)?;
        }
        UserCommand::Lock { name } => {
            let a = store
                .update(&name, |a| a.locked = true)
                .map_err(not_found(&name))?;
            writeln!(out, "user '{}' is locked", a.name)?;
        }
        UserCommand::Unlock { name } => {
            let a = store
                .update(&name, |a| a.locked = false)
                .map_err(not_found(&name))?;
            writeln!(out, "user '{}' is unlocked", a.name)?;
        }
        UserCommand::Key { cmd } => run_key(cmd, store, out)?,
        // It needs the configuration (data directory, save paths): `saves::run`.
        UserCommand::Saves(_) => bail!("`user saves` is run with the configuration"),
    }
    Ok(())
}

/// The `user key …` subcommands.
fn run_key(cmd: KeyCommand, store: &Store, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    match cmd {
        KeyCommand::Add { name, file } => {
            require(store, &name)?;
            let text = read_key_file(&file)?;
            let mut parsed = Vec::new();
            for (i, line) in text.lines().enumerate() {
                let trimmed = line.trim();
                if trimmed.is_empty() || trimmed.starts_with('#') {
                    continue;
                }
                let key = parse_authorized_key(trimmed)
                    .with_context(|| format!("{} line {}", file.display(), i + 1))?;
                parsed.push(key);
            }
            if parsed.is_empty() {
                bail!("no public key found in {}", file.display());
            }
            let mut added = Vec::new();
            let mut skipped = Vec::new();
            store
                .update(&name, |a| {
                    for key in parsed {
                        if a.has_key(&key.blob) {
                            skipped.push(key.fingerprint());
                        } else {
                            added.push(key.fingerprint());
                            a.keys.push(key);
                        }
                    }
                })
                .map_err(not_found(&name))?;
            for fp in added {
                writeln!(out, "added key {fp} to user '{name}'")?;
            }
            for fp in skipped {
                writeln!(out, "key {fp} is already on user '{name}'; skipped")?;
            }
        }
        KeyCommand::Del {
            name,
            fingerprint_or_index,
        } => {
            let account = require(store, &name)?;
            let target = find_key(&account, &fingerprint_or_index)?;
            let mut removed = false;
            store
                .update(&name, |a| {
                    let before = a.keys.len();
                    a.keys.retain(|k| k.blob != target);
                    removed = a.keys.len() != before;
                })
                .map_err(not_found(&name))?;
            if !removed {
                bail!("key {fingerprint_or_index} was removed concurrently");
            }
            writeln!(
                out,
                "removed key {} from user '{name}'",
                key_fingerprint(&target)
            )?;
        }
        KeyCommand::List { name } => {
            let account = require(store, &name)?;
            if account.keys.is_empty() {
                writeln!(out, "user '{}' has no SSH keys", account.name)?;
            }
            for (i, k) in account.keys.iter().enumerate() {
                writeln!(
                    out,
                    "{:>3}  {:<20} {}  {}  added {}",
                    i + 1,
                    k.key_type,
                    k.fingerprint(),
                    k.comment,
                    format_date(k.added_unix)
                )?;
            }
        }
    }
    Ok(())
}

/// Refuses a name that breaks the naming rules, with the CLI's wording.
fn check_name(name: &str) -> anyhow::Result<()> {
    validate_name(name).map_err(|e| anyhow!("name '{}' is not valid: {e}", name.escape_debug()))
}

/// Loads an account or fails with "user 'x' does not exist".
fn require(store: &Store, name: &str) -> anyhow::Result<Account> {
    store
        .get(name)?
        .ok_or_else(|| anyhow!("user '{}' does not exist", name.escape_debug()))
}

/// Maps `AuthError::NotFound` to the CLI's wording; passes other errors through.
fn not_found(name: &str) -> impl FnOnce(AuthError) -> anyhow::Error + '_ {
    move |e| match e {
        AuthError::NotFound(_) => anyhow!("user '{}' does not exist", name.escape_debug()),
        other => other.into(),
    }
}

/// Finds the blob of the key named by a `SHA256:` fingerprint or a 1-based index.
fn find_key(account: &Account, which: &str) -> anyhow::Result<Vec<u8>> {
    let by_index = which
        .parse::<usize>()
        .ok()
        .and_then(|i| i.checked_sub(1))
        .and_then(|i| account.keys.get(i));
    let found = by_index.or_else(|| account.keys.iter().find(|k| k.fingerprint() == which));
    found.map(|k| k.blob.clone()).ok_or_else(|| {
        anyhow!(
            "user '{}' has no key {} (see `user key list {}`)",
            account.name,
            which.escape_debug(),
            account.name
        )
    })
}

/// Reads a key file ("-" = stdin), capped in size.
fn read_key_file(file: &Path) -> anyhow::Result<String> {
    /// Upper bound for a key file: plenty for dozens of keys.
    const MAX_FILE: u64 = 64 * MAX_KEY_LINE_LEN as u64;
    let mut text = String::new();
    if file == Path::new("-") {
        std::io::stdin()
            .lock()
            .take(MAX_FILE + 1)
            .read_to_string(&mut text)
            .context("reading keys from standard input")?;
    } else {
        std::fs::File::open(file)
            .and_then(|f| f.take(MAX_FILE + 1).read_to_string(&mut text))
            .with_context(|| format!("reading {}", file.display()))?;
    }
    if text.len() as u64 > MAX_FILE {
        bail!("{} is too large for a key file", file.display());
    }
    Ok(text)
}

/// Reads a new password: first line of stdin if it is not a terminal, otherwise two silent
/// prompts that must match. Validated against the password rules.
fn read_new_password() -> anyhow::Result<Zeroizing<String>> {
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        let first = Zeroizing::new(rpassword::prompt_password("New password: ")?);
        validate_password(&first)?;
        let second = Zeroizing::new(rpassword::prompt_password("Repeat password: ")?);
        if *first != *second {
            bail!("passwords do not match");
        }
        first
    } else {
        let mut line = Zeroizing::new(String::new());
        stdin
            .lock()
            .take(4096)
            .read_line(&mut line)
            .context("reading password from standard input")?;
        let trimmed = line.strip_suffix('\n').unwrap_or(&line);
        let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
        Zeroizing::new(trimmed.to_owned())
    };
    validate_password(&password)?;
    Ok(password)
}

/// Writes the `user list` table.
fn write_table(out: &mut impl std::io::Write, accounts: &[Account]) -> std::io::Result<()> {
    let width = accounts
        .iter()
        .map(|a| a.name.len())
        .max()
        .unwrap_or(0)
        .max(4);
    writeln!(
        out,
        "{:<width$}  {:<5}  {:<6}  {:>4}  {:<10}  EMAIL",
        "NAME", "ADMIN", "LOCKED", "KEYS", "CREATED"
    )?;
    for a in accounts {
        writeln!(
            out,
            "{:<width$}  {:<5}  {:<6}  {:>4}  {:<10}  {}",
            a.name,
            yes_no(a.admin),
            yes_no(a.locked),
            a.keys.len(),
            format_date(a.created_unix),
            a.email.as_deref().unwrap_or("-")
        )?;
    }
    writeln!(out, "{} account(s)", accounts.len())
}

/// "yes" / "no".
fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// `YYYY-MM-DD` (UTC) for a Unix timestamp; "-" for 0 (unknown).
fn format_date(unix: u64) -> String {
    if unix == 0 {
        return "-".into();
    }
    crate::date::utc_date(unix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_formatted_as_utc_calendar_days() {
        assert_eq!(format_date(0), "-");
        assert_eq!(format_date(86_400), "1970-01-02");
        assert_eq!(format_date(951_782_400), "2000-02-29");
        assert_eq!(format_date(1_700_000_000), "2023-11-14");
    }

    #[test]
    fn list_table_shows_every_column() {
        let mut a = Account::new("Alice", "$argon2id$secret".into(), 1_700_000_000);
        a.admin = true;
        a.email = Some("alice@example.org".into());
        let b = Account::new("bob", "y".into(), 0);
        let mut buf = Vec::new();
        write_table(&mut buf, &[a, b]).unwrap();
        let text = String::from_utf8(buf).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("NAME "), "{text}");
        assert!(lines[1].contains("Alice") && lines[1].contains("yes"));
        assert!(lines[1].contains("2023-11-14") && lines[1].contains("alice@example.org"));
        assert!(lines[2].starts_with("bob ") && lines[2].ends_with('-'));
        assert_eq!(lines[3], "2 account(s)");
        assert!(!text.contains("argon2id"), "no hashes in the listing");
    }

    #[test]
    fn keys_are_found_by_index_or_fingerprint() {
        let mut a = Account::new("alice", "x".into(), 0);
        for b in [vec![1u8], vec![2u8]] {
            a.keys.push(crate::auth::AuthorizedKey {
                key_type: "ssh-ed25519".into(),
                blob: b,
                comment: String::new(),
                added_unix: 0,
            });
        }
        assert_eq!(find_key(&a, "2").unwrap(), vec![2u8]);
        assert_eq!(find_key(&a, &key_fingerprint(&[1u8])).unwrap(), vec![1u8]);
        assert!(find_key(&a, "0").is_err());
        assert!(find_key(&a, "3").is_err());
        assert!(find_key(&a, "SHA256:nope").is_err());
    }

    /// Fast argon2 parameters for CLI tests.
    const FAST: PasswordParams = PasswordParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    /// Runs `cmd` with `pw` as the password input; returns printed output.
    fn exec(store: &Store, cmd: UserCommand, pw: &str) -> anyhow::Result<String> {
        let pw = pw.to_owned();
        let mut source = move || Ok(Zeroizing::new(pw.clone()));
        let mut out = Vec::new();
        execute(cmd, store, FAST, &mut source, &mut out)?;
        Ok(String::from_utf8(out)?)
    }

    /// A fresh store in a unique temp dir (removed by the returned guard).
    fn temp_store(tag: &str) -> (Store, TempDir) {
        let dir =
            TempDir(std::env::temp_dir().join(format!("dg-usercli-{tag}-{}", std::process::id())));
        let _ = std::fs::remove_dir_all(&dir.0);
        (Store::open(&dir.0).unwrap(), dir)
    }

    /// Removes a directory on drop.
    struct TempDir(PathBuf);

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn add(name: &str) -> UserCommand {
        UserCommand::Add {
            name: name.into(),
            email: None,
            admin: false,
        }
    }

    #[test]
    fn add_then_passwd_changes_the_verifiable_password() {
        let (store, _dir) = temp_store("passwd");
        exec(&store, add("alice"), "first-pass").unwrap();
        let hasher = PasswordHasher::new(FAST).unwrap();
        let phc = store.get("alice").unwrap().unwrap().password_phc;
        assert!(hasher.verify(Some(&phc), "first-pass"));
        exec(
            &store,
            UserCommand::Passwd {
                name: "Alice".into(),
            },
            "second-pass",
        )
        .unwrap();
        let phc = store.get("alice").unwrap().unwrap().password_phc;
        assert!(!hasher.verify(Some(&phc), "first-pass"));
        assert!(hasher.verify(Some(&phc), "second-pass"));
    }

    #[test]
    fn add_reports_clear_errors() {
        let (store, _dir) = temp_store("adderr");
        exec(&store, add("alice"), "first-pass").unwrap();
        let dup = exec(&store, add("ALICE"), "first-pass").unwrap_err();
        assert_eq!(dup.to_string(), "user 'ALICE' already exists");
        let bad = exec(&store, add("x-y"), "first-pass").unwrap_err();
        assert_eq!(
            bad.to_string(),
            "name 'x-y' is not valid: only letters and digits"
        );
        let short = exec(&store, add("bob"), "123").unwrap_err();
        assert!(short.to_string().contains("too short"), "{short}");
        let email = UserCommand::Add {
            name: "bob".into(),
            email: Some("not-an-email".into()),
            admin: false,
        };
        assert!(exec(&store, email, "first-pass").is_err());
        assert_eq!(store.count().unwrap(), 1);
        let missing = exec(
            &store,
            UserCommand::Del {
                name: "nobody".into(),
            },
            "",
        )
        .unwrap_err();
        assert_eq!(missing.to_string(), "user 'nobody' does not exist");
    }

    #[test]
    fn admin_lock_and_del_change_the_record() {
        let (store, _dir) = temp_store("flags");
        exec(&store, add("bob"), "first-pass").unwrap();
        exec(
            &store,
            UserCommand::Admin {
                name: "bob".into(),
                revoke: false,
            },
            "",
        )
        .unwrap();
        exec(&store, UserCommand::Lock { name: "bob".into() }, "").unwrap();
        let b = store.get("bob").unwrap().unwrap();
        assert!(b.admin && b.locked);
        exec(
            &store,
            UserCommand::Admin {
                name: "bob".into(),
                revoke: true,
            },
            "",
        )
        .unwrap();
        exec(&store, UserCommand::Unlock { name: "bob".into() }, "").unwrap();
        let b = store.get("bob").unwrap().unwrap();
        assert!(!b.admin && !b.locked);
        let listing = exec(&store, UserCommand::List, "").unwrap();
        assert!(listing.contains("bob"), "{listing}");
        exec(&store, UserCommand::Del { name: "bob".into() }, "").unwrap();
        assert_eq!(store.get("bob").unwrap(), None);
    }

    #[test]
    fn key_add_list_and_del_round_trip() {
        let (store, dir) = temp_store("keys");
        exec(&store, add("carol"), "first-pass").unwrap();
        let key_path = dir.0.join("id");
        let gen = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "carol@box", "-f"])
            .arg(&key_path)
            .status()
            .unwrap();
        assert!(gen.success());
        let pub_path = key_path.with_extension("pub");
        let key_add = |p: &Path| UserCommand::Key {
            cmd: KeyCommand::Add {
                name: "carol".into(),
                file: p.to_path_buf(),
            },
        };
        let printed = exec(&store, key_add(&pub_path), "").unwrap();
        assert!(printed.contains("added key SHA256:"), "{printed}");
        let again = exec(&store, key_add(&pub_path), "").unwrap();
        assert!(again.contains("skipped"), "{again}");
        let acct = store.get("carol").unwrap().unwrap();
        assert_eq!(acct.keys.len(), 1);
        let fp = acct.keys[0].fingerprint();
        let list = exec(
            &store,
            UserCommand::Key {
                cmd: KeyCommand::List {
                    name: "carol".into(),
                },
            },
            "",
        )
        .unwrap();
        assert!(list.contains(&fp) && list.contains("carol@box"), "{list}");
        let del = UserCommand::Key {
            cmd: KeyCommand::Del {
                name: "carol".into(),
                fingerprint_or_index: fp.clone(),
            },
        };
        exec(&store, del, "").unwrap();
        assert!(store.get("carol").unwrap().unwrap().keys.is_empty());

        let garbage = dir.0.join("garbage.pub");
        std::fs::write(&garbage, "ssh-dss AAAA nope\n").unwrap();
        let err = exec(&store, key_add(&garbage), "").unwrap_err();
        assert!(
            format!("{err:#}").contains("unsupported key type 'ssh-dss'"),
            "{err:#}"
        );
    }
}
