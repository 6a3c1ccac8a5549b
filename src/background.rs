//! Background work at low priority: persistent threads with a raised nice value that run
//! CPU-heavy jobs (counting tokens in a long text) for callers that wait for the result, and
//! chores nobody waits for (freeing large buffers).
//!
//! Why not the libuv pool directly: on a small machine, waking a normal-priority thread for a
//! long computation can make the scheduler preempt the event-loop thread that woke it
//! (measured: the `estimateAsync` step that queued the count took 1-4.5 ms instead of 0.05
//! when the count ran on a libuv thread). A thread at nice 10 does not win the CPU from the
//! event loop that way as often; the libuv thread that hands the job over only waits. (On
//! Linux 6.18 nice 10 alone did not always keep a woken thread from preempting the event
//! loop or a tokio thread, notes/perf-session12.md: work nobody waits for runs at
//! [`batch_priority`] or on the idle thread, [`speculate`].)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, sync_channel, Sender};
use std::sync::{Mutex, OnceLock};

type Job = Box<dyn FnOnce() + Send>;

/// Threads started on first use and kept for the life of the process: one per CPU, from
/// two to four (counts of long texts run here; the libuv threads that queued them wait).
fn threads() -> usize {
    cores().clamp(2, 4)
}

/// The cores this process may use (1 if unknown).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// How many threads may work beside the event loop for it at once (serializeAsync's render
/// threads, the Redis tier's tokio workers): half the cores, 1 to 4. With the event loop they
/// do not outnumber the cores, so they do not preempt it on a small machine (on the project's
/// 2-vCPU VM two render threads, or two tokio workers, beside the event loop measured worse
/// than one: notes/perf-session6.md).
pub fn beside_event_loop(cores: usize) -> usize {
    (cores / 2).clamp(1, 4)
}

/// Lowers the calling thread's scheduling priority (Linux nice values are per thread; best
/// effort: a failure leaves the thread as it was).
pub fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid has no preconditions; setpriority with PRIO_PROCESS and a thread id
    // only changes that thread's nice value, and its failure is harmless (ignored).
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
    }
}

/// [`lower_priority`], and the calling thread never preempts another when it wakes up or is
/// handed work (Linux `SCHED_BATCH`; best effort). For long work that nobody is waiting for
/// yet (loading tables ahead of their first use): at nice 10 alone, such a thread still took
/// the CPU from the event loop (or from a tokio thread mid-read) on this project's 2-vCPU VM
/// (notes/perf-session12.md). A thread that waits for its result is blocked and leaves the CPU
/// to it.
pub fn batch_priority() {
    lower_priority();
    #[cfg(target_os = "linux")]
    set_policy(libc::SCHED_BATCH);
}

/// The calling thread runs only when a CPU has nothing else to do (Linux `SCHED_IDLE`; best
/// effort). For speculative work that nobody ever waits for (preparing buffers ahead): it
/// gives way to every other thread at once, and a process cannot raise it back, so it must
/// never run work someone waits for.
fn idle_priority() {
    #[cfg(target_os = "linux")]
    set_policy(libc::SCHED_IDLE);
}

#[cfg(target_os = "linux")]
fn set_policy(policy: libc::c_int) {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param (priority 0, as
    // these policies require); a failure leaves the thread as it was (ignored).
    unsafe {
        libc::sched_setscheduler(0, policy, &param);
    }
}

/// Queues `f` for the process's one idle-priority thread ([`idle_priority`]), without
/// waiting; `false` (and `f` dropped unrun) when that thread could not be started. For work
/// that may never run on a busy machine (nobody waits for it; a panic in `f` is caught).
pub fn speculate<F: FnOnce() + Send + 'static>(f: F) -> bool {
    static IDLE: OnceLock<Option<Mutex<Sender<Job>>>> = OnceLock::new();
    let thread = IDLE.get_or_init(|| job_thread("acn-idle".into(), idle_priority));
    match thread.as_ref().map(|t| t.lock()) {
        Some(Ok(tx)) => tx.send(caught(f)).is_ok(),
        _ => false,
    }
}

/// A thread named `name` that first calls `setup`, then runs the jobs sent to it in order;
/// `None` if it could not be started.
fn job_thread(name: String, setup: fn()) -> Option<Mutex<Sender<Job>>> {
    let (tx, rx) = channel::<Job>();
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            setup();
            for job in rx {
                job();
            }
        })
        .ok()
        .map(|_| Mutex::new(tx))
}

/// `f` as a job whose panic is caught (the thread goes on with the next job).
fn caught<F: FnOnce() + Send + 'static>(f: F) -> Job {
    Box::new(move || {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    })
}

fn pool() -> &'static [Mutex<Sender<Job>>] {
    static POOL: OnceLock<Vec<Mutex<Sender<Job>>>> = OnceLock::new();
    POOL.get_or_init(|| {
        (0..threads())
            .filter_map(|i| job_thread(format!("acn-background-{i}"), lower_priority))
            .collect()
    })
}

/// Hands `job` to the next background thread, or runs it here when none could be started.
fn submit(job: Job) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let threads = pool();
    let i = NEXT.fetch_add(1, Ordering::Relaxed);
    let sent = match threads.get(i % threads.len().max(1)) {
        Some(t) => match t.lock() {
            Ok(s) => s.send(job).map_err(|e| e.0),
            Err(_) => Err(job),
        },
        None => Err(job),
    };
    if let Err(job) = sent {
        job();
    }
}

/// Runs `f` on a low-priority thread without waiting for it (a panic in `f` is caught).
pub fn spawn<F: FnOnce() + Send + 'static>(f: F) {
    submit(caught(f));
}

/// Runs `f` on a low-priority thread and waits for its result (on the calling thread when
/// no background thread could be started). A panic in `f` becomes `None`.
pub fn run<T, F>(f: F) -> Option<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = sync_channel::<Option<T>>(1);
    submit(Box::new(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok();
        // The caller may be gone; nothing to do then.
        let _ = tx.send(r);
    }));
    rx.recv().ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_jobs_and_returns_results_and_survives_a_panic() {
        assert_eq!(run(|| 6 * 7), Some(42));
        let many: Vec<_> = (0..16)
            .map(|i| std::thread::spawn(move || run(move || i * 2)))
            .collect();
        for (i, h) in many.into_iter().enumerate() {
            assert_eq!(h.join().ok().flatten(), Some(i * 2));
        }
        assert_eq!(run(|| -> u8 { panic!("boom") }), None);
        assert_eq!(run(|| 1), Some(1));
    }

    /// (policy, nice) of the calling thread.
    #[cfg(target_os = "linux")]
    fn own_scheduling() -> (libc::c_int, libc::c_int) {
        // SAFETY: queries of the calling thread only (pid 0 / its own tid).
        unsafe {
            let tid = libc::gettid();
            (
                libc::sched_getscheduler(0),
                libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t),
            )
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn batch_priority_is_nice_10_and_sched_batch() {
        let got = std::thread::spawn(|| {
            batch_priority();
            own_scheduling()
        })
        .join()
        .ok();
        assert_eq!(got, Some((libc::SCHED_BATCH, 10)));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn speculative_work_runs_at_idle_priority_and_survives_a_panic() {
        let (tx, rx) = channel();
        assert!(speculate(|| panic!("boom")));
        let tx2 = tx.clone();
        assert!(speculate(move || {
            let _ = tx2.send(own_scheduling().0);
        }));
        drop(tx);
        let policy = rx.recv_timeout(std::time::Duration::from_secs(5));
        assert_eq!(policy.ok(), Some(libc::SCHED_IDLE));
    }
}
