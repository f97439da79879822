//! The provided buffer ring of a core: receives pick a 4 KiB buffer only when data arrives, so
//! an idle connection holds none. Each completion names its buffer; it goes back to the ring
//! as soon as its bytes have been handed to the connection's session.

use io_uring::types::BufRingEntry;
use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

/// Size of one buffer.
pub const BUF_SIZE: usize = 4096;
/// The buffer group id (one group per ring).
pub const GROUP: u16 = 0;

/// Anonymous memory mapped with `mmap`, unmapped on drop.
struct Mapping {
    ptr: *mut u8,
    len: usize,
}

impl Mapping {
    fn new(len: usize) -> io::Result<Mapping> {
        // SAFETY: an anonymous private mapping with no address hint; the result is checked.
        #[allow(unsafe_code)]
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping {
            ptr: ptr.cast(),
            len,
        })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned.
        #[allow(unsafe_code)]
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}

/// A registered ring of `count` buffers of [`BUF_SIZE`].
pub struct BufRing {
    /// The ring of entries the kernel takes buffers from (page aligned).
    entries: Mapping,
    /// The buffers themselves.
    buffers: Mapping,
    count: u16,
    /// Our copy of the tail (the kernel reads the shared one).
    tail: u16,
    /// Buffers handed out by completions and not yet given back.
    out: usize,
}

impl BufRing {
    /// Allocate `count` buffers (a power of two ≤ 32768) and register them with `ring`.
    pub fn register(ring: &super::ring::Ring, count: u16) -> io::Result<BufRing> {
        if !count.is_power_of_two() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "buffer count must be a power of two",
            ));
        }
        let entries = Mapping::new(usize::from(count) * std::mem::size_of::<BufRingEntry>())?;
        let buffers = Mapping::new(usize::from(count) * BUF_SIZE)?;
        // SAFETY: the entries mapping is page aligned, sized for `count` entries, and lives
        // as long as this BufRing, which the core drops only after its ring.
        #[allow(unsafe_code)]
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(entries.ptr as u64, count, GROUP, 0)?;
        }
        let mut br = BufRing {
            entries,
            buffers,
            count,
            tail: 0,
            out: usize::from(count),
        };
        for bid in 0..count {
            br.add(bid);
        }
        br.publish();
        Ok(br)
    }

    /// The bytes a completion put in buffer `bid`.
    pub fn get(&self, bid: u16, len: usize) -> &[u8] {
        if bid >= self.count {
            return &[];
        }
        let len = len.min(BUF_SIZE);
        // SAFETY: `bid` is in range, so the slice lies inside the buffers mapping; the kernel
        // wrote it before posting the completion and will not touch it until it is given back.
        #[allow(unsafe_code)]
        unsafe {
            std::slice::from_raw_parts(self.buffers.ptr.add(usize::from(bid) * BUF_SIZE), len)
        }
    }

    /// Give buffer `bid` back to the kernel.
    pub fn recycle(&mut self, bid: u16) {
        if bid < self.count {
            self.add(bid);
            self.publish();
        }
    }

    /// Buffers held by completions now (normally 0 between turns).
    pub fn in_use(&self) -> usize {
        self.out
    }

    fn add(&mut self, bid: u16) {
        let mask = self.count - 1;
        let slot = usize::from(self.tail & mask);
        // SAFETY: `slot` < count, inside the entries mapping; the kernel only reads entries
        // between its head and the published tail, and this one is past the tail.
        #[allow(unsafe_code)]
        unsafe {
            let entry = &mut *self.entries.ptr.cast::<BufRingEntry>().add(slot);
            entry.set_addr(self.buffers.ptr.add(usize::from(bid) * BUF_SIZE) as u64);
            entry.set_len(BUF_SIZE as u32);
            entry.set_bid(bid);
        }
        self.tail = self.tail.wrapping_add(1);
        self.out = self.out.saturating_sub(1);
    }

    /// Make added entries visible to the kernel.
    fn publish(&self) {
        // SAFETY: the tail field overlaps the first entry's reserved field, inside the
        // mapping; it is written only by this thread and read by the kernel (release store).
        #[allow(unsafe_code)]
        unsafe {
            let tail =
                BufRingEntry::tail(self.entries.ptr.cast::<BufRingEntry>()) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }

    /// A completion took a buffer.
    pub fn taken(&mut self) {
        self.out += 1;
    }
}
