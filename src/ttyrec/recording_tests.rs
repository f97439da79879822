use super::*;
use crate::ttyrec::frame::{HEADER_LEN, MAX_WRITE_FRAME};
use crate::ttyrec::reader::{Frame, Reader};

fn t(sec: u32) -> Timestamp {
    Timestamp { sec, usec: 0 }
}

fn frames(bytes: &[u8]) -> Vec<Frame> {
    Reader::new(bytes)
        .map(|f| f.expect("whole frames"))
        .collect()
}

fn never(why: Resync, _: &mut Vec<u8>) {
    panic!("unexpected resync: {why:?}");
}

/// A small deterministic generator for sizes (xorshift).
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The files a writer following `batches` would make: the first file, then one per start.
fn files_of(batches: &[Batch]) -> Vec<Vec<u8>> {
    let mut files = vec![Vec::new()];
    for b in batches {
        for part in b.parts() {
            if let Some(at) = part.new_file {
                // The start's time is its first frame's.
                assert_eq!(frames(part.bytes)[0].at, at);
                files.push(Vec::new());
            }
            files.last_mut().unwrap().extend_from_slice(part.bytes);
        }
    }
    files
}

#[test]
fn the_preamble_comes_first_then_the_frames_in_order() {
    let mut rec = Recording::new(u64::MAX, t(10), b"hello");
    rec.frame(t(11), b"a", never);
    rec.frame(Timestamp { sec: 11, usec: 5 }, b"bc", never);
    rec.frame(t(12), b"", never);
    assert_eq!(rec.pending(), 3 * HEADER_LEN + 8);
    let batch = rec.take(Vec::new());
    assert_eq!(rec.pending(), 0);
    assert_eq!(batch.parts().count(), 1);
    let got = frames(batch.bytes());
    let want = [
        (t(10), &b"hello"[..]),
        (t(11), b"a"),
        (Timestamp { sec: 11, usec: 5 }, b"bc"),
    ];
    assert_eq!(got.len(), want.len());
    for (f, (at, data)) in got.iter().zip(want) {
        assert_eq!((f.at, &f.data[..]), (at, data));
    }
    assert!(rec.take(Vec::new()).is_empty());
    assert_eq!(
        (rec.dropped_bytes(), rec.gaps(), rec.files_started()),
        (0, 0, 1)
    );
}

#[test]
fn buffers_passed_back_are_reused() {
    let mut rec = Recording::new(u64::MAX, t(0), b"p");
    let spare = Vec::with_capacity(1 << 16);
    let ptr = spare.as_ptr();
    let first = rec.take(spare);
    rec.frame(t(1), b"abc", never);
    let second = rec.take(first.into_buffer());
    assert_eq!(second.bytes().as_ptr(), ptr);
    assert_eq!(frames(second.bytes())[0].data, b"abc");
}

#[test]
fn long_output_is_cut_into_frames_that_stay_in_one_file() {
    let cap = (3 * MAX_WRITE_FRAME) as u64;
    let mut rec = Recording::new(cap, t(0), b"first");
    rec.frame(t(1), &[b'a'; 100], never);
    let big = vec![b'b'; 2 * MAX_WRITE_FRAME + 1];
    rec.frame(t(2), &big, never);
    // The next one does not fit: a new file with the whole output, cut in three frames.
    rec.frame(t(3), &big, |why, s| {
        assert_eq!(why, Resync::NewFile);
        s.extend_from_slice(b"again");
    });
    let files = files_of(&[rec.take(Vec::new())]);
    assert_eq!(files.len(), 2);
    let second = frames(&files[1]);
    assert_eq!(second[0].data, b"again");
    assert_eq!(second.len(), 4);
    assert!(second[1..].iter().all(|f| f.at == t(3)));
    let joined: Vec<u8> = second[1..].iter().flat_map(|f| f.data.clone()).collect();
    assert_eq!(joined, big);
    assert!(files[0].len() as u64 <= cap);
}

#[test]
fn rotation_never_splits_a_frame_and_every_file_starts_with_its_first_frame() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for cap in [40u64, 300, 1000, 5000] {
        let mut rec = Recording::new(cap, t(0), b"PREAMBLE");
        let mut sent = Vec::new();
        let mut batches = Vec::new();
        let mut repaints = 0u32;
        for i in 0..2000u32 {
            let len = 1 + rng.below(200) as usize;
            let data: Vec<u8> = (0..len).map(|k| (i as usize + k) as u8).collect();
            let at = Timestamp {
                sec: 1 + i / 10,
                usec: i % 10,
            };
            rec.frame(at, &data, |why, s| {
                assert_eq!(why, Resync::NewFile);
                repaints += 1;
                s.extend_from_slice(format!("REPAINT {repaints}").as_bytes());
            });
            sent.push(Frame { at, data });
            // The writer comes by now and then, sometimes after several rotations.
            if rng.below(7) == 0 {
                batches.push(rec.take(Vec::new()));
            }
        }
        batches.push(rec.take(Vec::new()));
        let files = files_of(&batches);
        assert_eq!(files.len() as u64, rec.files_started(), "cap {cap}");
        assert_eq!(files.len() as u32, repaints + 1, "cap {cap}");
        let mut received = Vec::new();
        for (n, file) in files.iter().enumerate() {
            // Each file parses whole: no frame was split across files.
            let fs = frames(file);
            let first = if n == 0 {
                "PREAMBLE".to_string()
            } else {
                format!("REPAINT {n}")
            };
            assert_eq!(fs[0].data, first.as_bytes(), "cap {cap} file {n}");
            // Never a file of nothing but its first frame.
            assert!(fs.len() >= 2, "cap {cap} file {n}");
            // Within the cap, or a file of its first frame and a single output frame.
            assert!(
                file.len() as u64 <= cap || fs.len() == 2,
                "cap {cap} file {n}"
            );
            received.extend(fs.into_iter().skip(1));
        }
        assert_eq!(received, sent, "cap {cap}");
        if cap > 300 {
            // Rotation happens, but not more often than needed.
            let (_, full) = files.split_last().unwrap();
            assert!(full.len() > 2 && full.iter().all(|f| f.len() as u64 > cap / 2));
        }
    }
}

#[test]
fn a_full_pending_buffer_drops_output_and_marks_the_gap() {
    let limit = 4096;
    let mut rec = Recording::new(u64::MAX, t(0), b"start").with_pending_limit(limit);
    let mut accepted = 0u64;
    for i in 0..1000u32 {
        let before = rec.pending();
        rec.frame(t(i), &[b'x'; 100], never);
        assert!(rec.pending() <= limit, "pending {}", rec.pending());
        if rec.pending() > before {
            accepted += 100;
        }
    }
    assert_eq!(accepted + rec.dropped_bytes(), 100_000);
    assert!(rec.dropped_bytes() > 90_000);
    let kept = frames(rec.take(Vec::new()).bytes());
    assert_eq!(kept.len() as u64, 1 + accepted / 100);

    // The writer caught up: the next output comes after a notice and a repaint.
    let mut asked = None;
    rec.frame(t(2000), b"next", |why, s| {
        asked = Some(why);
        s.extend_from_slice(b"\x1b[2JSCREEN");
    });
    assert_eq!(asked, Some(Resync::AfterGap));
    let after = frames(rec.take(Vec::new()).bytes());
    assert_eq!(after.len(), 3);
    let notice = String::from_utf8(after[0].data.clone()).unwrap();
    assert!(
        notice.contains(&format!("{} bytes", rec.dropped_bytes())),
        "{notice:?}"
    );
    assert!(after[0].data[2..].starts_with(GAP_MARK));
    assert_eq!(after[1].data, b"\x1b[2JSCREEN");
    assert_eq!(after[2].data, b"next");
    assert!(after.iter().all(|f| f.at == t(2000)));
    assert_eq!(rec.gaps(), 1);
    // And then no more notices.
    rec.frame(t(2001), b"more", never);
    assert_eq!(frames(rec.take(Vec::new()).bytes()).len(), 1);
}

#[test]
fn a_frame_larger_than_the_limit_is_taken_into_an_empty_buffer() {
    let mut rec = Recording::new(u64::MAX, t(0), b"p").with_pending_limit(100);
    let _ = rec.take(Vec::new());
    rec.frame(t(1), &[b'y'; 500], never);
    assert_eq!(rec.dropped_bytes(), 0);
    rec.frame(t(2), b"z", never);
    assert_eq!(rec.dropped_bytes(), 1);
}

#[test]
fn a_gap_before_a_rotation_ends_the_old_file_and_the_new_one_starts_clean() {
    let mut rec = Recording::new(200, t(0), b"p").with_pending_limit(150);
    rec.frame(t(1), &[b'a'; 100], never);
    rec.frame(t(2), &[b'b'; 100], never); // dropped: the writer is behind
    let first = rec.take(Vec::new());
    let mut asked = Vec::new();
    rec.frame(t(3), &[b'c'; 100], |why, s| {
        asked.push(why);
        s.extend_from_slice(b"HEADER+SCREEN");
    });
    assert_eq!(asked, [Resync::NewFile]);
    let files = files_of(&[first, rec.take(Vec::new())]);
    assert_eq!(files.len(), 2);
    let old = frames(&files[0]);
    assert!(old.last().unwrap().data[2..].starts_with(GAP_MARK));
    let new = frames(&files[1]);
    assert_eq!(new[0].data, b"HEADER+SCREEN");
    assert_eq!(new[1].data, [b'c'; 100]);
    assert_eq!(new.len(), 2);
}
