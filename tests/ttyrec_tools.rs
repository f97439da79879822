//! Recordings as files, checked from outside: `dungeongate ttyrec info` end to end, files cut
//! at every byte, compressed files read by their magic, and the real Debian players reading
//! what we write (`ttyplay` and `ttytime` from the `ttyrec` package; `termcat` and `termtime`
//! from `termrec`, which also writes gzip and zstd files for our reader). CI installs both
//! packages (`.ci/run`); elsewhere a test whose tool is missing says so and is skipped.

use dungeongate::ttyrec::{
    reader, Compression, Frame, Info, Preamble, Recording, Sink, TermSize, Timestamp,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const START: u64 = 1_700_000_000;

/// Output of a short game, with its offset from the start in microseconds.
const SCRIPT: &[(u64, &[u8])] = &[
    (500_000, b"\x1b[H\x1b[2J\x1b[1;31m@\x1b[0m the dungeon\r\n"),
    (
        1_250_000,
        "caf\u{e9} \u{2500}\u{2500} \u{263a}\r\n".as_bytes(),
    ),
    (3_000_000, b"\x1b[5;10H\x1b(0lqqk\x1b(B"),
    (5_250_000, b"bye\r\n"),
];

fn at(offset_us: u64) -> Timestamp {
    let t = UNIX_EPOCH + Duration::from_secs(START) + Duration::from_micros(offset_us);
    Timestamp::from(t)
}

/// A finished recording in `dir` as the server makes it, and all its frames.
fn record(dir: &Path, compression: Compression) -> (PathBuf, Vec<u8>) {
    let start = UNIX_EPOCH + Duration::from_secs(START);
    let preamble = Preamble {
        player: "alice",
        game: "NetHack",
        server: "test",
        start,
        rows: 24,
        cols: 80,
    }
    .bytes();
    let mut rec = Recording::new(u64::MAX, at(0), &preamble);
    let mut sink = Sink::create(dir, start, compression).expect("create");
    for &(t, bytes) in SCRIPT {
        rec.frame(at(t), bytes, |_, _| panic!("no resync in a short game"));
    }
    let batch = rec.take(Vec::new());
    assert!(sink.write_batch(&batch).expect("write").is_empty());
    (sink.finish().expect("finish"), batch.into_buffer())
}

/// Everything the player's terminal received, in order.
fn screen_bytes(frames: &[Frame]) -> Vec<u8> {
    frames.iter().flat_map(|f| f.data.iter().copied()).collect()
}

fn frames_of(path: &Path) -> Vec<Frame> {
    let (r, _) = reader::open(path).expect("open");
    r.map(|f| f.expect("frame")).collect()
}

fn dungeongate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dungeongate"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run dungeongate")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `name` on the PATH, or `None` after saying the test is skipped. Under CI, which installs
/// the tools, a missing one fails instead: a skip there would hide a broken install line.
fn tool(name: &str, package: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let msg = format!("`{name}` not found: apt-get install -y {package}");
        assert!(std::env::var_os("CI").is_none(), "{msg}");
        eprintln!("SKIPPED: {msg}");
    }
    found
}

#[test]
fn info_describes_plain_and_compressed_recordings() {
    let t = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (i, c) in [Compression::None, Compression::Gzip, Compression::Zstd]
        .iter()
        .enumerate()
    {
        let dir = t.path().join(format!("d{i}"));
        let (path, _) = record(&dir, *c);
        assert!(path
            .to_string_lossy()
            .ends_with(&format!(".ttyrec{}", c.extension())));
        paths.push(path.to_string_lossy().into_owned());
    }
    let mut args = vec!["ttyrec", "info"];
    args.extend(paths.iter().map(String::as_str));
    let out = dungeongate(&args);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    for p in &paths {
        assert!(stdout.contains(p.as_str()), "{stdout}");
    }
    assert_eq!(
        stdout.matches("duration: 0:00:05.250").count(),
        3,
        "{stdout}"
    );
    assert_eq!(stdout.matches("frames:   5").count(), 3, "{stdout}");
    assert_eq!(stdout.matches("terminal: 80x24").count(), 3, "{stdout}");
    assert!(
        stdout.contains("(gzip; ") && stdout.contains("(zstd; "),
        "{stdout}"
    );
    assert!(!stdout.contains("CUT SHORT"), "{stdout}");
    let plain_len = std::fs::metadata(&paths[0]).unwrap().len();
    assert!(
        stdout.contains(&format!("size:     {plain_len} bytes\n")),
        "{stdout}"
    );
}

#[test]
fn info_reports_a_cut_file_and_fails_on_a_missing_or_corrupt_one() {
    let t = tempfile::tempdir().unwrap();
    let (path, bytes) = record(t.path(), Compression::None);
    let cut = t.path().join("cut.ttyrec");
    std::fs::write(&cut, &bytes[..bytes.len() - 3]).unwrap();
    let out = dungeongate(&["ttyrec", "info", cut.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("CUT SHORT") && stdout.contains("frames:   4"),
        "{stdout}"
    );

    let corrupt = t.path().join("corrupt.ttyrec");
    std::fs::write(&corrupt, b"this is not a ttyrec file at all, just text\n").unwrap();
    let missing = t.path().join("missing.ttyrec");
    let out = dungeongate(&[
        "ttyrec",
        "info",
        missing.to_str().unwrap(),
        corrupt.to_str().unwrap(),
        path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{}: No such file", missing.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{}: corrupt", corrupt.display())),
        "{stderr}"
    );
    // The good file is still described.
    assert!(
        text(&out.stdout).contains("frames:   5"),
        "{}",
        text(&out.stdout)
    );

    let out = dungeongate(&["ttyrec", "info"]);
    assert_eq!(out.status.code(), Some(2), "clap's usage error");
}

#[test]
fn a_file_cut_at_every_byte_keeps_its_whole_frames() {
    let t = tempfile::tempdir().unwrap();
    let (_, bytes) = record(t.path(), Compression::None);
    let all = reader::Reader::new(&bytes[..]).count();
    let cut = t.path().join("cut.ttyrec");
    let mut last_frames = 0;
    for n in 0..=bytes.len() {
        std::fs::write(&cut, &bytes[..n]).unwrap();
        let info = Info::from_path(&cut).unwrap_or_else(|e| panic!("cut at {n}: {e}"));
        let boundary = info.bytes == n as u64;
        assert_eq!(info.truncated, !boundary, "cut at {n}");
        assert!(info.frames >= last_frames && info.frames as usize <= all);
        last_frames = info.frames;
        if info.frames > 0 {
            assert_eq!(info.first_size, Some(TermSize { rows: 24, cols: 80 }));
        }
    }
    assert_eq!(last_frames as usize, all);
}

#[test]
fn compressed_files_cut_short_keep_what_they_hold() {
    let t = tempfile::tempdir().unwrap();
    for c in [Compression::Gzip, Compression::Zstd] {
        let dir = t.path().join(c.name());
        let (path, _) = record(&dir, c);
        let packed = std::fs::read(&path).unwrap();
        let cut = dir.join("cut.bin");
        for n in 4..packed.len() {
            std::fs::write(&cut, &packed[..n]).unwrap();
            match Info::from_path(&cut) {
                // Whole frames up to the cut, then the cut (also when only the end of
                // the compressed stream is missing and every frame came through).
                Ok(info) => assert!(info.truncated && info.frames <= 5, "{c:?} at {n}"),
                Err(e) => panic!("{c:?} cut at {n}: {e}"),
            }
        }
    }
}

#[test]
fn compressed_files_are_recognised_by_their_bytes_not_their_names() {
    let t = tempfile::tempdir().unwrap();
    let (gz, bytes) = record(t.path(), Compression::Gzip);
    let renamed = t.path().join("renamed.ttyrec");
    std::fs::rename(&gz, &renamed).unwrap();
    let info = Info::from_path(&renamed).unwrap();
    assert_eq!((info.compression, info.frames), (Compression::Gzip, 5));
    assert_eq!(
        screen_bytes(&frames_of(&renamed)),
        screen_bytes(
            &reader::Reader::new(&bytes[..])
                .map(Result::unwrap)
                .collect::<Vec<_>>()
        )
    );
}

#[test]
fn ttyplay_replays_exactly_the_bytes_recorded() {
    let Some(ttyplay) = tool("ttyplay", "ttyrec") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let (path, _) = record(t.path(), Compression::None);
    // -n: no waiting between frames; the terminal bytes go to standard output as they are.
    let out = Command::new(ttyplay)
        .arg("-n")
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(out.stdout, screen_bytes(&frames_of(&path)));
}

#[test]
fn ttytime_and_termtime_agree_on_the_length() {
    let t = tempfile::tempdir().unwrap();
    if let Some(ttytime) = tool("ttytime", "ttyrec") {
        let (path, _) = record(&t.path().join("plain"), Compression::None);
        let out = Command::new(ttytime).arg(&path).output().unwrap();
        // Whole seconds.
        let secs = text(&out.stdout);
        assert_eq!(secs.split_whitespace().next(), Some("5"), "{secs}");
    }
    let Some(termtime) = tool("termtime", "termrec") else {
        return;
    };
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let (path, _) = record(&t.path().join(c.name()), c);
        let out = Command::new(&termtime).arg(&path).output().unwrap();
        let printed = text(&out.stdout);
        assert!(out.status.success(), "{printed}{}", text(&out.stderr));
        // "      5.250000\tNAME"
        let secs: f64 = printed
            .split_whitespace()
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("termtime printed {printed:?}"));
        let ours = Info::from_path(&path).unwrap().duration.as_secs_f64();
        assert!(
            (secs - 5.25).abs() < 1e-6 && (ours - 5.25).abs() < 1e-6,
            "{c:?}: {printed}"
        );
    }
}

#[test]
fn termcat_reads_our_files_and_we_read_its_files() {
    let Some(termcat) = tool("termcat", "termrec") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let (ours, _) = record(&t.path().join(c.name()), c);
        let want = screen_bytes(&frames_of(&ours));
        // To standard output termcat writes the terminal bytes without headers.
        let out = Command::new(&termcat).arg(&ours).arg("-").output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(out.stdout, want, "{c:?}");
        // Written back as a ttyrec by termrec's library (plain, gzip, zstd by extension).
        for ext in ["ttyrec", "ttyrec.gz", "ttyrec.zst"] {
            let theirs = t.path().join(format!("theirs-{}.{ext}", c.name()));
            let st = Command::new(&termcat)
                .arg(&ours)
                .arg(&theirs)
                .status()
                .unwrap();
            assert!(st.success());
            let frames = frames_of(&theirs);
            assert_eq!(screen_bytes(&frames), want, "{c:?} → {ext}");
            let info = Info::from_path(&theirs).unwrap();
            assert_eq!(info.duration, Duration::from_micros(5_250_000), "{ext}");
            assert_eq!(info.first_size, Some(TermSize { rows: 24, cols: 80 }));
        }
    }
}

#[test]
fn the_start_time_names_the_file() {
    let t = tempfile::tempdir().unwrap();
    let (path, _) = record(t.path(), Compression::None);
    assert_eq!(
        path.file_name().unwrap(),
        "2023-11-14.22:13:20.ttyrec",
        "dgamelaunch's naming"
    );
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(START);
    assert_eq!(
        Info::from_path(&path).unwrap().start,
        Some(Timestamp::from(start))
    );
}
