//! Text buffers that are used again instead of freed.
//!
//! A value read from Redis is converted (off the main thread) into a Latin-1 or UTF-16 buffer
//! that V8 then copies (short texts) or takes over as an external string (long ones). Fresh
//! memory for every such buffer was costly on this project's 2-vCPU VM:
//! - the kernel faults in and zeroes each page on first write (a 100 KB value needs a 200 KB
//!   UTF-16 buffer: 50 pages);
//! - the buffer was allocated on a tokio thread and freed on the main thread, so the two
//!   contended for the allocator's arena lock, and the main thread paid for the free.
//!
//! This pool keeps buffers in four size classes. A buffer comes back when V8 has copied the
//! text, or when V8 collects the external string that used it (the finalizer runs on the main
//! thread and only pushes it here), and the next conversion takes it with its pages already
//! in memory and without zeroing it again. External strings come back only when V8 collects
//! them, which may be long after, so for the larger classes a low-priority background thread
//! also keeps a couple of buffers ready, their pages faulted in beforehand (a read that had to
//! fault in a fresh 256 KB buffer itself took longer than one that found it ready). Not for
//! the largest class: there the preparation did not spare the reads their page faults (the
//! tokio thread still spent as much time in the kernel) and cost more CPU than the reads
//! themselves, 2.6 ms per read of a 1 MB value (notes/perf-session12.md). A take that finds
//! its class empty allocates as usual.
//!
//! A class keeps room for one buffer more than it keeps ready: a buffer that comes straight
//! back (the UTF-8 buffer a payload was decompressed into, given back once converted) finds
//! its place while the background thread's ready ones wait. With room for only as many as were
//! kept ready, each such read had a new buffer prepared and the one that came back freed.
//!
//! Bounded: at most `KEEP[c]` idle buffers per class and element type, each at most twice its
//! class's size (the largest at most that size): 11 MB per element type when every buffer has
//! its class's size, 18 MB at the very most.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::background;

/// Buffer sizes (bytes) the pool keeps; a text takes the smallest that holds it.
pub const CLASSES: [usize; 4] = [32 << 10, 256 << 10, 1 << 20, 4 << 20];
/// Idle buffers kept per class and element type (at least one more than `READY`).
const KEEP: [usize; 4] = [64, 8, 3, 1];
/// Buffers the background thread keeps ready per class (taking one starts preparing the
/// next). None for the smallest class: blocks that size are cheap to allocate and come back
/// at once (their texts are copied into the JS heap). None for the largest (see above).
const READY: [usize; 4] = [0, 2, 2, 0];
/// The largest pooled buffer (bytes).
pub const CAP_BYTES: usize = CLASSES[CLASSES.len() - 1];
/// Texts below this many bytes are allocated as usual (small blocks are cheap to allocate).
pub const MIN_BYTES: usize = 4 << 10;

struct Pool<T> {
    idle: Mutex<Vec<Vec<T>>>,
    /// Buffers being prepared by the background thread.
    pending: AtomicUsize,
}

impl<T> Pool<T> {
    const fn new() -> Self {
        Pool {
            idle: Mutex::new(Vec::new()),
            pending: AtomicUsize::new(0),
        }
    }

    fn pop(&self) -> Option<Vec<T>> {
        self.idle.lock().ok().and_then(|mut r| r.pop())
    }

    fn idle(&self) -> usize {
        self.idle.lock().map(|r| r.len()).unwrap_or(usize::MAX)
    }

    /// Keeps `v` if there is room for `keep`; otherwise gives it back.
    fn push(&self, v: Vec<T>, keep: usize) -> Option<Vec<T>> {
        match self.idle.lock() {
            Ok(mut r) if r.len() < keep => {
                r.push(v);
                None
            }
            _ => Some(v),
        }
    }
}

/// The pool of one element type: a [`Pool`] per size class.
pub struct Pools<T> {
    classes: [Pool<T>; 4],
}

static U8: Pools<u8> = Pools::new();
static U16: Pools<u16> = Pools::new();

/// An element of a pooled buffer.
pub trait Elem: Copy + Default + Send + Sync + 'static {
    /// The process-wide pool of this element type.
    fn pools() -> &'static Pools<Self>;
}
impl Elem for u8 {
    fn pools() -> &'static Pools<u8> {
        &U8
    }
}
impl Elem for u16 {
    fn pools() -> &'static Pools<u16> {
        &U16
    }
}

/// The class a text of `bytes` bytes takes a buffer from.
fn class_for(bytes: usize) -> Option<usize> {
    if bytes < MIN_BYTES {
        return None;
    }
    CLASSES.iter().position(|&c| c >= bytes)
}

impl<T: Elem> Pools<T> {
    const fn new() -> Self {
        Pools {
            classes: [Pool::new(), Pool::new(), Pool::new(), Pool::new()],
        }
    }

    /// Prepares one buffer of `class` on the background thread (its pages written, so
    /// faulted in), unless `READY` of them are idle or on their way already.
    fn refill(&'static self, class: usize) {
        let p = &self.classes[class];
        if p.idle().saturating_add(p.pending.load(Ordering::Relaxed)) >= READY[class] {
            return;
        }
        p.pending.fetch_add(1, Ordering::Relaxed);
        // Idle priority: a preparation woken by a take must not take the CPU from the read
        // that is converting into the buffer it took (at nice 10 it did, for up to 0.14 ms,
        // notes/perf-session12.md); it runs in the gaps.
        let queued = background::speculate(move || {
            let n = CLASSES[class] / std::mem::size_of::<T>();
            // Zeroed by the allocator (fresh pages from the kernel are zero already, so this
            // writes nothing), then one element per page written, so that the pages are
            // faulted in here and not by the next user. Writing every element as well (as
            // this did) was a quarter of the preparation's CPU, for nothing.
            let mut v: Vec<T> = vec![T::default(); n];
            let per_page = (4096 / std::mem::size_of::<T>()).max(1);
            for i in (0..n).step_by(per_page) {
                if let Some(x) = v.get_mut(i) {
                    // A volatile write: a plain store of the zero the allocator is known to
                    // have put there could be optimized away, leaving the page untouched.
                    // SAFETY: `x` is a valid, aligned, exclusive reference to an element.
                    unsafe { std::ptr::write_volatile(x, T::default()) };
                }
            }
            drop(p.push(v, KEEP[class]));
            p.pending.fetch_sub(1, Ordering::Relaxed);
        });
        if !queued {
            p.pending.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// See [`take`].
    pub fn take(&'static self, len: usize) -> Vec<T> {
        let bytes = len.saturating_mul(std::mem::size_of::<T>());
        let Some(class) = class_for(bytes) else {
            return vec![T::default(); len];
        };
        let got = self.classes[class].pop();
        self.refill(class);
        // A new buffer gets the class's full size, so that it serves the class when it is back.
        let mut v =
            got.unwrap_or_else(|| Vec::with_capacity(CLASSES[class] / std::mem::size_of::<T>()));
        if v.len() >= len {
            v.truncate(len);
        } else {
            v.resize(len, T::default());
        }
        v
    }

    /// See [`give_back`].
    pub fn give_back(&self, v: Vec<T>) {
        let bytes = v.capacity().saturating_mul(std::mem::size_of::<T>());
        // The largest class the buffer can serve; kept only if not much larger than that.
        let Some(class) = CLASSES.iter().rposition(|&c| c <= bytes) else {
            return;
        };
        let unkept = if bytes <= 2 * CLASSES[class] && bytes <= CAP_BYTES {
            self.classes[class].push(v, KEEP[class])
        } else {
            Some(v)
        };
        if let Some(v) = unkept {
            release(v);
        }
    }
}

/// Frees `v`: a large one on a background thread. Most buffers come back on the main thread
/// (V8 runs the finalizers of external strings there), and freeing megabytes means giving
/// their pages back to the kernel: in a loop of 1 MB reads that was ~0.18 ms of the main
/// thread's kernel time per read (notes/perf-session12.md).
fn release<T: Send + 'static>(v: Vec<T>) {
    if v.capacity().saturating_mul(std::mem::size_of::<T>()) >= RELEASE_ELSEWHERE_BYTES {
        background::spawn(move || drop(v));
    }
}

/// Buffers at least this large are freed off the calling thread ([`release`]).
const RELEASE_ELSEWHERE_BYTES: usize = 1 << 20;

/// A buffer of exactly `len` elements with unspecified contents (a reused buffer keeps what
/// it held; only room it never had is zeroed), to be overwritten by a conversion.
pub fn take<T: Elem>(len: usize) -> Vec<T> {
    T::pools().take(len)
}

/// Gives a buffer whose text V8 no longer needs back to the pool (dropped when it is too
/// small or too large for a class, or its class is full). Any thread.
pub fn give_back<T: Elem>(v: Vec<T>) {
    T::pools().give_back(v)
}

/// Gives a finished text's unused room back to the allocator when it is large (a text that
/// started in a larger pooled buffer must not hold all of it until V8 frees it).
pub fn fit<T>(mut v: Vec<T>) -> Vec<T> {
    let spare = (v.capacity() - v.len()) * std::mem::size_of::<T>();
    if spare > 64 << 10 && v.capacity() > 2 * v.len() {
        v.shrink_to_fit();
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A pool of the test's own (the process-wide ones are shared with other tests).
    fn own() -> &'static Pools<u16> {
        Box::leak(Box::new(Pools::new()))
    }

    fn wait_for(what: &str, done: impl Fn() -> bool) {
        let t = Instant::now();
        while !done() {
            assert!(t.elapsed() < Duration::from_secs(5), "{what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn small_texts_are_not_pooled() {
        let v: Vec<u8> = take(100);
        assert_eq!(v, vec![0; 100]);
        assert!(v.capacity() < CLASSES[0]);
    }

    #[test]
    fn buffers_come_back_and_are_reused_without_zeroing() {
        let pools = own();
        let class = class_for(70_000).unwrap_or(0);
        // The first take finds the class empty: it allocates, and starts the refills.
        let mut v = pools.take(35_000);
        assert_eq!(v.len(), 35_000);
        let quiet = || {
            wait_for("a refill never ended", || {
                pools.classes[class].pending.load(Ordering::Relaxed) == 0
            })
        };
        quiet();
        assert_eq!(pools.classes[class].idle(), 1, "the pool was not refilled");
        // (Each take starts a refill: the test waits for it before giving a buffer back, so
        // that the next take, last in first out, finds the buffer given back.)
        while pools.classes[class].pop().is_some() {}
        // A returned buffer is taken again: same allocation, old contents, exact length.
        v.iter_mut().for_each(|x| *x = 7);
        let ptr = v.as_ptr();
        pools.give_back(v);
        let again = pools.take(34_000);
        assert_eq!(again.as_ptr(), ptr, "the returned buffer was not reused");
        assert_eq!(again.len(), 34_000);
        assert!(
            again.iter().all(|&x| x == 7),
            "a reused buffer is zeroed again"
        );
        // Growing a reused buffer within its capacity zeroes only the new room.
        quiet();
        pools.give_back(again);
        let grown = pools.take(36_000);
        assert_eq!(grown.as_ptr(), ptr);
        assert!(grown[..34_000].iter().all(|&x| x == 7));
        assert!(grown[34_000..].iter().all(|&x| x == 0));
    }

    #[test]
    fn a_buffer_given_straight_back_needs_no_new_one() {
        // The decompression buffer's life: taken, given back once the text is converted. Each
        // take prepares at most one buffer, so after `READY` rounds (one where none are
        // prepared) the class holds its ready buffers plus the one that comes back; later
        // rounds start no preparation and reuse the same buffer.
        for class in 1..CLASSES.len() {
            let pools = own();
            let len = CLASSES[class] / 2 / std::mem::size_of::<u16>() + 1;
            let quiet = || {
                wait_for("a refill never ended", || {
                    pools.classes[class].pending.load(Ordering::Relaxed) == 0
                })
            };
            for _ in 0..READY[class].max(1) {
                let v = pools.take(len);
                quiet();
                pools.give_back(v);
            }
            assert_eq!(
                pools.classes[class].idle(),
                READY[class] + 1,
                "class {class}"
            );
            let mut seen = std::collections::HashSet::new();
            for _ in 0..10 {
                let v = pools.take(len);
                assert_eq!(
                    pools.classes[class].pending.load(Ordering::Relaxed),
                    0,
                    "class {class}: a take started preparing a buffer"
                );
                seen.insert(v.as_ptr() as usize);
                pools.give_back(v);
            }
            assert_eq!(seen.len(), 1, "class {class}: buffers were not reused");
        }
    }

    #[test]
    fn the_largest_class_is_not_prepared_ahead() {
        let pools = own();
        let last = CLASSES.len() - 1;
        let v = pools.take(CLASSES[last] / 4);
        assert_eq!(pools.classes[last].pending.load(Ordering::Relaxed), 0);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(pools.classes[last].idle(), 0);
        pools.give_back(v);
        assert_eq!(pools.classes[last].idle(), 1);
    }

    #[test]
    fn prepared_buffers_are_zeroed_and_full_size() {
        let pools = own();
        let class = 1;
        let _ = pools.take(CLASSES[class] / 4);
        wait_for("no buffer was prepared", || {
            pools.classes[class].idle() >= 1
        });
        let v = pools.classes[class].pop().unwrap_or_default();
        assert_eq!(v.len(), CLASSES[class] / 2);
        assert!(v.iter().all(|&x| x == 0));
    }

    #[test]
    fn the_pool_is_bounded() {
        let pools = own();
        for class in 0..CLASSES.len() {
            for _ in 0..KEEP[class] + 3 {
                pools.give_back(vec![0u16; CLASSES[class] / 2]);
            }
            assert_eq!(pools.classes[class].idle(), KEEP[class]);
        }
        // Too small or too large for any class: not kept.
        let pools = own();
        pools.give_back(vec![0u16; CLASSES[0] / 2 - 1]);
        pools.give_back(vec![0u16; CLASSES[0] + 1]); // more than twice class 0, less than class 1
        pools.give_back(vec![0u16; CAP_BYTES / 2 + 1]);
        assert!(pools.classes.iter().all(|p| p.idle() == 0));
    }

    #[test]
    fn fit_releases_room_a_small_text_does_not_use() {
        let mut v: Vec<u8> = Vec::with_capacity(CLASSES[1]);
        v.extend_from_slice(&[1, 2, 3]);
        let v = fit(v);
        assert_eq!(v, [1, 2, 3]);
        assert!(v.capacity() < 1024);
        let full: Vec<u8> = vec![7; 3 * CLASSES[0]];
        assert_eq!(fit(full).capacity(), 3 * CLASSES[0]);
    }
}
