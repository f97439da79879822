use super::*;
use crate::ttyrec::frame::Timestamp;
use crate::ttyrec::name::file_name;
use crate::ttyrec::reader::{self, Frame};
use crate::ttyrec::recording::{Recording, Resync};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::time::{Duration, UNIX_EPOCH};

fn start() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn read_all(path: &Path) -> (Vec<Frame>, Compression) {
    let (r, c) = reader::open(path).unwrap();
    (r.map(|f| f.unwrap()).collect(), c)
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

fn one_frame(bytes: &[u8]) -> Vec<u8> {
    let mut rec = Recording::new(u64::MAX, Timestamp { sec: 1, usec: 2 }, bytes);
    rec.take(Vec::new()).into_buffer()
}

#[test]
fn missing_directories_and_the_file_are_made_private() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("ttyrec/alice/nethack");
    let mut sink = Sink::create(&dir, start(), Compression::None).unwrap();
    assert_eq!(sink.path(), dir.join("2023-11-14.22:13:20.ttyrec"));
    // At most 0750 and 0640 (a umask may take more away), and usable by their owner.
    for d in [t.path().join("ttyrec"), dir.clone()] {
        assert_eq!(mode(&d) & !0o750, 0, "{}", d.display());
        assert_eq!(mode(&d) & 0o700, 0o700, "{}", d.display());
    }
    assert_eq!(mode(&sink.path()) & !0o640, 0);
    assert_eq!(mode(&sink.path()) & 0o600, 0o600);
    sink.write(&one_frame(b"hello")).unwrap();
    let done = sink.finish().unwrap();
    let (frames, c) = read_all(&done);
    assert_eq!(c, Compression::None);
    assert_eq!(frames[0].data, b"hello");
}

#[test]
fn a_second_recording_in_the_same_second_gets_the_next_number() {
    let t = tempfile::tempdir().unwrap();
    let a = Sink::create(t.path(), start(), Compression::None).unwrap();
    let b = Sink::create(t.path(), start(), Compression::None).unwrap();
    // A compressed recording from earlier in that second holds its name too.
    std::fs::write(t.path().join("2023-11-14.22:13:20-3.ttyrec.zst"), b"x").unwrap();
    let c = Sink::create(t.path(), start(), Compression::None).unwrap();
    let name = |s: &Sink| s.path().file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(name(&a), "2023-11-14.22:13:20.ttyrec");
    assert_eq!(name(&b), "2023-11-14.22:13:20-2.ttyrec");
    assert_eq!(name(&c), "2023-11-14.22:13:20-4.ttyrec");
}

#[test]
fn batches_rotate_into_files_that_each_play_alone() {
    for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let t = tempfile::tempdir().unwrap();
        let mut sink = Sink::create(t.path(), start(), compression).unwrap();
        let t0 = Timestamp::from(start());
        let mut rec = Recording::new(600, t0, b"\x1b[8;24;80tPREAMBLE");
        let mut finished = Vec::new();
        for i in 0..60u32 {
            let at = Timestamp {
                sec: t0.sec + i / 20,
                usec: i,
            };
            rec.frame(
                at,
                format!("frame {i:03} ").repeat(10).as_bytes(),
                |why, s| {
                    assert_eq!(why, Resync::NewFile);
                    s.extend_from_slice(b"\x1b[8;24;80tREPAINT");
                },
            );
            if i % 7 == 0 {
                finished.extend(sink.write_batch(&rec.take(Vec::new())).unwrap());
            }
        }
        finished.extend(sink.write_batch(&rec.take(Vec::new())).unwrap());
        finished.push(sink.finish().unwrap());
        assert_eq!(
            finished.len() as u64,
            rec.files_started(),
            "{compression:?}"
        );
        let mut names: Vec<String> = std::fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut want: Vec<String> = finished
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        want.sort();
        // Only the finished files are left (no originals beside compressed copies).
        assert_eq!(names, want, "{compression:?}");
        let mut outputs = 0;
        for (n, path) in finished.iter().enumerate() {
            assert!(path.to_string_lossy().ends_with(compression.extension()));
            let (frames, c) = read_all(path);
            assert_eq!(c, compression);
            let first: &[u8] = if n == 0 { b"PREAMBLE" } else { b"REPAINT" };
            assert!(frames[0].data.ends_with(first), "{compression:?} file {n}");
            outputs += frames.len() - 1;
        }
        assert_eq!(outputs, 60, "{compression:?}");
        // Rotations named for their first frame's second: one more file at :21 and :22.
        assert!(want.iter().any(|n| n.starts_with("2023-11-14.22:13:22")));
    }
}

#[test]
fn a_link_planted_at_the_file_name_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let victim = t.path().join("victim");
    symlink(&victim, t.path().join(file_name(start()))).unwrap();
    let e = Sink::create(t.path(), start(), Compression::None).unwrap_err();
    assert!(matches!(e, RecordError::Symlink { .. }), "{e}");
    assert!(e.to_string().contains("2023-11-14.22:13:20.ttyrec"), "{e}");
    assert!(!victim.exists());
}

#[test]
fn a_link_planted_for_a_directory_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let open = t.path().join("users");
    std::fs::create_dir(&open).unwrap();
    // Writable by anyone, as a per-user tree is by the games user.
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let elsewhere = t.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    symlink(&elsewhere, open.join("alice")).unwrap();
    let e = Sink::create(&open.join("alice/ttyrec"), start(), Compression::None).unwrap_err();
    assert!(matches!(e, RecordError::Symlink { .. }), "{e}");
    assert!(!elsewhere.join("ttyrec").exists());
}

#[test]
fn a_link_planted_at_the_compressed_name_keeps_the_original() {
    let t = tempfile::tempdir().unwrap();
    let mut sink = Sink::create(t.path(), start(), Compression::Gzip).unwrap();
    sink.write(&one_frame(b"kept")).unwrap();
    let original = sink.path();
    let victim = t.path().join("victim");
    symlink(&victim, t.path().join(format!("{}.gz", file_name(start())))).unwrap();
    let e = sink.finish().unwrap_err();
    assert!(matches!(e, RecordError::Symlink { .. }), "{e}");
    assert!(!victim.exists());
    assert_eq!(read_all(&original).0[0].data, b"kept");
}

#[test]
fn a_full_disk_is_reported_with_the_path() {
    let t = tempfile::tempdir().unwrap();
    let mut sink = Sink::create(t.path(), start(), Compression::None).unwrap();
    // /dev/full fails every write with ENOSPC.
    sink.file = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let e = sink.write(b"x").unwrap_err();
    assert_eq!(e.kind(), "disk_full");
    assert!(e.to_string().contains("2023-11-14.22:13:20.ttyrec"), "{e}");
}
