//! The `save_file` pattern: checked when the configuration loads, expanded for one player
//! with the placeholders of [`crate::game::launch`] (`%u`, `%uid`, `%d`, `%D`).

use super::SaveError;
use crate::config::{Config, GameConfig};
use crate::game::launch::{expand, Vars};
use std::path::{Component, Path, PathBuf};

/// Why `pattern` cannot be a game's `save_file`, or `Ok`; `user_dir` is the game's. It must
/// be absolute once expanded (start with `/`, `%D`, or `%d` for a game with a `user_dir`),
/// name the player (`%u`, or `%d` of a `user_dir` with `%u`: otherwise every player's backup
/// would be a copy of one shared file), use only `%u`, `%uid`, `%d`, `%D` and `%%`, and have
/// no `..` component.
pub fn check_pattern(pattern: &str, user_dir: Option<&str>) -> Result<(), String> {
    let used = scan(pattern)?;
    if used.user_dir && user_dir.is_none() {
        return Err("uses %d, but the game has no user_dir".into());
    }
    if !(pattern.starts_with('/') || pattern.starts_with("%D") || pattern.starts_with("%d")) {
        return Err("is not an absolute path (start it with /, %D or %d)".into());
    }
    if pattern.split('/').any(|part| part == "..") {
        return Err("has a .. component".into());
    }
    if pattern.ends_with('/') {
        return Err("names a directory, not a file".into());
    }
    let per_user_dir = used.user_dir && user_dir.and_then(|d| scan(d).ok()).is_some_and(|d| d.user);
    if !(used.user || per_user_dir) {
        return Err(
            "does not name the player (%u): every player's backups would be of one file".into(),
        );
    }
    Ok(())
}

/// The placeholders a `save_file` (or `user_dir`) template uses.
struct Used {
    /// `%u`.
    user: bool,
    /// `%d`.
    user_dir: bool,
}

fn scan(template: &str) -> Result<Used, String> {
    let mut used = Used {
        user: false,
        user_dir: false,
    };
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        if let Some(rest) = chars.as_str().strip_prefix("uid") {
            chars = rest.chars();
            continue;
        }
        match chars.next() {
            Some('u') => used.user = true,
            Some('d') => used.user_dir = true,
            Some('D' | '%') => {}
            other => {
                let what = other.map_or("%".to_owned(), |o| format!("%{o}"));
                return Err(format!(
                    "uses {what}, which is not a save_file placeholder (%u, %uid, %d, %D, %%)"
                ));
            }
        }
    }
    Ok(used)
}

/// The save file of `user` for `game` when the game runs as `uid`; `None` when the game has
/// no `save_file`. The expanded path is checked again (absolute, no `..`, a file name at
/// the end): the pattern was checked at load, but the values put into it come from outside.
pub fn save_path(
    config: &Config,
    game: &GameConfig,
    user: &str,
    uid: u32,
) -> Result<Option<PathBuf>, SaveError> {
    let Some(pattern) = game.save_file.as_deref() else {
        return Ok(None);
    };
    let data_dir =
        std::path::absolute(&config.data_dir).map_err(|e| SaveError::io(&config.data_dir, e))?;
    let data_dir = data_dir.to_string_lossy();
    let mut vars = Vars {
        user,
        uid,
        user_dir: "",
        rc_file: "",
        data_dir: &data_dir,
    };
    let user_dir = game
        .user_dir
        .as_deref()
        .map(|t| expand(t, &vars))
        .unwrap_or_default();
    vars.user_dir = &user_dir;
    checked(expand(pattern, &vars)).map(Some)
}

/// `path` as a safe absolute file path, or why not.
pub(super) fn checked(path: String) -> Result<PathBuf, SaveError> {
    let bad = |why| SaveError::BadPath {
        path: path.clone(),
        why,
    };
    let p = Path::new(&path);
    if !p.is_absolute() {
        return Err(bad("is not absolute"));
    }
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(bad("has a .. component"));
    }
    if path.ends_with('/') || !matches!(p.components().next_back(), Some(Component::Normal(_))) {
        return Err(bad("does not end in a file name"));
    }
    if path.contains('\0') {
        return Err(bad("contains a NUL byte"));
    }
    Ok(PathBuf::from(path))
}
