//! `dungeongate ttyrec …`: the operator's look at recordings. Needs no configuration.

use super::compress::Compression;
use super::info::Info;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// `dungeongate ttyrec <command>`.
#[derive(Debug, clap::Subcommand)]
pub enum TtyrecCommand {
    /// Describe recordings (plain, .gz or .zst): duration, frames, size, terminal size, and
    /// whether the file was cut short.
    Info {
        /// Recording files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// Run a command; a file that cannot be read or is not a recording is said on standard error
/// and makes the exit status 1, after the other files have been described.
pub fn run(cmd: &TtyrecCommand) -> ExitCode {
    match cmd {
        TtyrecCommand::Info { files } => {
            let mut failed = false;
            for path in files {
                match Info::from_path(path) {
                    // A closed pipe (`| head`) is no error of ours: stop quietly.
                    Ok(info) => {
                        if std::io::stdout()
                            .write_all(describe(path, &info).as_bytes())
                            .is_err()
                        {
                            break;
                        }
                    }
                    Err(e) => {
                        failed = true;
                        // Open errors already name the path.
                        match e {
                            super::ReadError::Open { .. } => eprintln!("dungeongate: {e}"),
                            _ => eprintln!("dungeongate: {}: {e}", path.display()),
                        }
                    }
                }
            }
            if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}

/// The lines `ttyrec info` prints for one file.
pub fn describe(path: &Path, info: &Info) -> String {
    let mut out = format!("{}\n", path.display());
    let _ = writeln!(out, "  duration: {}", clock(info.duration));
    let _ = writeln!(out, "  frames:   {}", info.frames);
    let on_disk = std::fs::metadata(path).map(|m| m.len()).ok();
    let _ = match (info.compression, on_disk) {
        (Compression::None, Some(n)) => writeln!(out, "  size:     {n} bytes"),
        (c, Some(n)) => writeln!(
            out,
            "  size:     {n} bytes ({}; {} bytes uncompressed)",
            c.name(),
            info.bytes
        ),
        (_, None) => writeln!(out, "  size:     {} bytes", info.bytes),
    };
    let _ = match info.first_size {
        Some(s) => writeln!(out, "  terminal: {}x{} (columns x rows)", s.cols, s.rows),
        None => writeln!(out, "  terminal: unknown"),
    };
    if info.gaps > 0 {
        let _ = writeln!(
            out,
            "  gaps:     {} (output the server could not record in time is missing there)",
            info.gaps
        );
    }
    if info.truncated {
        let _ = writeln!(
            out,
            "  CUT SHORT: the file ends inside a frame (the recorder was stopped while writing \
             it); only the whole frames are counted above"
        );
    }
    out
}

/// `H:MM:SS.mmm`.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!(
        "{}:{:02}:{:02}.{:03}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ttyrec::preamble::TermSize;

    #[test]
    fn the_description_says_what_matters() {
        let mut info = Info {
            start: None,
            duration: Duration::from_millis(3_723_250),
            frames: 12,
            bytes: 345,
            output_bytes: 201,
            first_size: Some(TermSize { rows: 24, cols: 80 }),
            truncated: false,
            gaps: 0,
            compression: Compression::None,
        };
        let missing = Path::new("/nonexistent/x.ttyrec");
        let text = describe(missing, &info);
        assert!(text.contains("duration: 1:02:03.250"), "{text}");
        assert!(text.contains("frames:   12"), "{text}");
        assert!(text.contains("size:     345 bytes"), "{text}");
        assert!(text.contains("terminal: 80x24"), "{text}");
        assert!(
            !text.contains("CUT SHORT") && !text.contains("gaps"),
            "{text}"
        );
        info.first_size = None;
        info.truncated = true;
        info.gaps = 2;
        let text = describe(missing, &info);
        assert!(text.contains("terminal: unknown"), "{text}");
        assert!(text.contains("CUT SHORT"), "{text}");
        assert!(text.contains("gaps:     2"), "{text}");
    }
}
