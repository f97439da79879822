//! `recording:` — every game's ttyrec: where, how large one file may grow, whether finished
//! files are compressed.

use super::{key_error, ConfigError};
use crate::ttyrec::Compression;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Where and how games are recorded.
#[derive(Debug, Clone)]
pub struct RecordingConfig {
    /// Record every game (ttyrec).
    pub enabled: bool,
    /// Root of the recordings: `<dir>/<player>/<game id>/YYYY-MM-DD.HH:MM:SS.ttyrec`.
    pub dir: PathBuf,
    /// A file past this size is closed and the game goes on in a new one.
    pub max_file_bytes: u64,
    /// Finished files are compressed (`.gz`, `.zst`) off the reactor.
    pub compress: Compression,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawRecording {
    enabled: bool,
    dir: String,
    max_file_mib: u64,
    /// `None`: not compressed.
    compress: Option<String>,
}

impl Default for RawRecording {
    fn default() -> Self {
        RawRecording {
            enabled: true,
            dir: "ttyrec".into(),
            max_file_mib: 256,
            compress: None,
        }
    }
}

impl RawRecording {
    /// The settings; a relative `dir` is under `data_dir`.
    pub(super) fn validate(self, data_dir: &Path) -> Result<RecordingConfig, ConfigError> {
        if self.max_file_mib == 0 {
            return Err(key_error(
                "recording.max_file_mib",
                "0 is not allowed (expected a positive number of MiB)",
            ));
        }
        let compress = match self.compress.as_deref().map(str::trim) {
            None | Some("" | "none") => Compression::None,
            Some("gzip" | "gz") => Compression::Gzip,
            Some("zstd" | "zst") => Compression::Zstd,
            Some(other) => {
                return Err(key_error(
                    "recording.compress",
                    format!("\"{other}\" is not one of none, gzip, zstd"),
                ))
            }
        };
        let dir = PathBuf::from(&self.dir);
        if self.dir.trim().is_empty() {
            return Err(key_error("recording.dir", "must not be empty"));
        }
        Ok(RecordingConfig {
            enabled: self.enabled,
            dir: if dir.is_absolute() {
                dir
            } else {
                data_dir.join(dir)
            },
            max_file_bytes: self.max_file_mib.saturating_mul(1024 * 1024),
            compress,
        })
    }
}
