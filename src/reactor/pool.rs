//! A per-core pool of 4 KiB buffers for transient I/O (socket reads): a connection holds no
//! buffer of its own while idle, and the steady state allocates nothing.

use std::cell::{Cell, RefCell};
use std::ops::{Deref, DerefMut};
use std::rc::Rc;

/// Size of every pooled buffer.
pub const BUF_SIZE: usize = 4096;
/// Buffers kept for reuse beyond those in use.
const MAX_IDLE: usize = 1024;

#[derive(Default)]
pub struct BufferPool {
    /// Free buffers.
    free: RefCell<Vec<Box<[u8; BUF_SIZE]>>>,
    /// Buffers handed out and not yet returned (a gauge for metrics).
    in_use: Cell<usize>,
}

impl BufferPool {
    pub fn take(self: &Rc<Self>) -> PooledBuf {
        let buf = self
            .free
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Box::new([0u8; BUF_SIZE]));
        self.in_use.set(self.in_use.get() + 1);
        PooledBuf {
            buf: Some(buf),
            pool: self.clone(),
        }
    }

    pub fn in_use(&self) -> usize {
        self.in_use.get()
    }
}

/// A buffer that returns to its pool when dropped.
pub struct PooledBuf {
    /// Always `Some` until dropped.
    buf: Option<Box<[u8; BUF_SIZE]>>,
    pool: Rc<BufferPool>,
}

impl Deref for PooledBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.buf.as_deref().map_or(&[], |b| b.as_slice())
    }
}

impl DerefMut for PooledBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.buf
            .as_deref_mut()
            .map_or(&mut [], |b| b.as_mut_slice())
    }
}

impl Drop for PooledBuf {
    fn drop(&mut self) {
        self.pool
            .in_use
            .set(self.pool.in_use.get().saturating_sub(1));
        if let Some(b) = self.buf.take() {
            let mut free = self.pool.free.borrow_mut();
            if free.len() < MAX_IDLE {
                free.push(b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_and_counted() {
        let pool = Rc::new(BufferPool::default());
        let a = pool.take();
        let ptr = a.as_ptr();
        assert_eq!(pool.in_use(), 1);
        assert_eq!(a.len(), BUF_SIZE);
        drop(a);
        assert_eq!(pool.in_use(), 0);
        let b = pool.take();
        assert_eq!(b.as_ptr(), ptr);
    }
}
