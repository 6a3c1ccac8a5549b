//! Output buffers whose pages are already in memory.
//!
//! Text handed to V8 as an external string lives in a Rust buffer until V8 collects the
//! string, so every large result is written into fresh memory, and the kernel faults in and
//! zeroes each of its pages on first write: on this project's 2-vCPU VM that was half of
//! converting a 100 KB value read from Redis (measured in a loop: 97 us per 200 KB with fresh
//! buffers, 40 us reusing one), and a fresh-instance 100 KB L2 hit went from ~0.66 to
//! ~0.58 ms with this pool (A/B, same machine). Tried for `serializeAsync`'s render output
//! too, where it measured slower (the refills compete with the walk on two vCPUs): not used
//! there. This pool keeps a few buffers of each of three sizes whose pages were
//! touched beforehand, by a low-priority background thread after each take; large outputs
//! start in one of them. Bounded: at most `KEEP` buffers per size and element type (~21 MB).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::background;

/// Buffer sizes (bytes) the pool keeps; an output takes the smallest that holds it.
pub const CLASSES: [usize; 3] = [256 << 10, 1 << 20, 4 << 20];
/// The largest pooled buffer (bytes).
pub const CAP_BYTES: usize = CLASSES[CLASSES.len() - 1];
/// Buffers kept ready per size and element type.
const KEEP: usize = 2;
/// Outputs expected below this many bytes do not use the pool (they fit in memory the
/// allocator reuses anyway).
pub const MIN_BYTES: usize = 64 << 10;

struct Pool<T> {
    ready: Mutex<Vec<Vec<T>>>,
    /// Buffers being prepared.
    pending: AtomicUsize,
}

impl<T> Pool<T> {
    const fn new() -> Self {
        Pool {
            ready: Mutex::new(Vec::new()),
            pending: AtomicUsize::new(0),
        }
    }
}

static U8: [Pool<u8>; 3] = [Pool::new(), Pool::new(), Pool::new()];
static U16: [Pool<u16>; 3] = [Pool::new(), Pool::new(), Pool::new()];

trait Elem: Copy + Default + Send + 'static {
    fn pools() -> &'static [Pool<Self>; 3];
}
impl Elem for u8 {
    fn pools() -> &'static [Pool<u8>; 3] {
        &U8
    }
}
impl Elem for u16 {
    fn pools() -> &'static [Pool<u16>; 3] {
        &U16
    }
}

fn refill<T: Elem>(class: usize) {
    let Some(p) = T::pools().get(class) else {
        return;
    };
    let have = p.ready.lock().map(|r| r.len()).unwrap_or(KEEP);
    if have + p.pending.load(Ordering::Relaxed) >= KEEP {
        return;
    }
    p.pending.fetch_add(1, Ordering::Relaxed);
    background::spawn(move || {
        let n = CLASSES[class] / std::mem::size_of::<T>();
        let mut v: Vec<T> = Vec::with_capacity(n);
        // Writing every element makes the kernel fault the pages in now, here.
        v.resize(n, T::default());
        v.clear();
        let p = &T::pools()[class];
        if let Ok(mut r) = p.ready.lock() {
            if r.len() < KEEP {
                r.push(v);
            }
        }
        p.pending.fetch_sub(1, Ordering::Relaxed);
    });
}

fn take<T: Elem>(expected: usize) -> Vec<T> {
    let bytes = expected.saturating_mul(std::mem::size_of::<T>());
    let class = CLASSES.iter().position(|&c| c >= bytes);
    match class {
        Some(class) if bytes >= MIN_BYTES => {
            let got = T::pools()[class]
                .ready
                .lock()
                .ok()
                .and_then(|mut r| r.pop());
            refill::<T>(class);
            got.unwrap_or_else(|| Vec::with_capacity(expected))
        }
        _ => Vec::with_capacity(expected),
    }
}

/// An empty byte buffer with room for `expected` bytes, pre-faulted when the size is in the
/// pool's range and one is ready.
pub fn bytes(expected: usize) -> Vec<u8> {
    take(expected)
}

/// [`bytes`] for UTF-16 units.
pub fn units(expected: usize) -> Vec<u16> {
    take(expected)
}

/// Gives a finished text's unused room back to the allocator when it is large (a text that
/// started in a larger pooled buffer must not hold all of it until V8 frees it).
pub fn fit<T>(mut v: Vec<T>) -> Vec<T> {
    let spare = (v.capacity() - v.len()) * std::mem::size_of::<T>();
    if spare > MIN_BYTES && v.capacity() > 2 * v.len() {
        v.shrink_to_fit();
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn large_outputs_get_pre_faulted_buffers_small_ones_do_not() {
        let small = bytes(1000);
        assert!(small.is_empty() && small.capacity() >= 1000 && small.capacity() < CAP_BYTES);
        // The first take starts the refill; a later one finds a ready buffer.
        let _ = units(MIN_BYTES);
        let t = Instant::now();
        loop {
            if U16[0].ready.lock().map(|r| !r.is_empty()).unwrap_or(false) {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "the pool was never refilled"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let v = units(100_000);
        assert!(v.is_empty());
        assert_eq!(v.capacity(), CLASSES[0] / 2);
        let huge = bytes(CAP_BYTES + 1);
        assert!(huge.capacity() > CAP_BYTES);
        // fit() releases the room a small text does not use, and keeps a full buffer as is.
        let mut v = v;
        v.extend_from_slice(&[1, 2, 3]);
        let v = fit(v);
        assert_eq!(v, [1, 2, 3]);
        assert!(v.capacity() < 1024);
        let full: Vec<u8> = vec![7; 3 * MIN_BYTES];
        assert_eq!(fit(full).capacity(), 3 * MIN_BYTES);
    }
}
