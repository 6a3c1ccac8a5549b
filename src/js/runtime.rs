//! The tokio runtime that runs the Redis tier's I/O: napi-rs's default is a multi-thread
//! runtime with one worker per core, replaced here (before its first use) by one with fewer
//! workers.
//!
//! Why: the event loop is one of the process's threads and does most of a Redis call's work
//! (JSON.parse of the value, settling the promise); a tokio worker needs less per call. On
//! this project's 2-vCPU VM, two workers beside the main thread passed each call between
//! tasks on different threads (connect task, redis-rs's connection driver, the call), every
//! hop a wake-up of an idle vCPU. One worker: a fresh instance's 100 KB L2 hit 0.52-0.53 ms
//! against 0.60-0.63 ms, and 50 gets in flight 42-46 k/s against 39-46 k/s
//! (`notes/perf-session6.md`).
//!
//! Workers: `io_worker_threads` (half the cores, 1 to 4; `TOKIO_WORKER_THREADS`, tokio's own
//! variable, overrides it).

use std::sync::Once;

use crate::cache::l2::config::io_worker_threads;

/// Hands napi-rs the runtime it will use; once per process (later loads, in worker threads,
/// share it). If the runtime cannot be built, napi-rs builds its default one instead.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let cores = crate::background::cores();
        let env = std::env::var("TOKIO_WORKER_THREADS").ok();
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.enable_all();
        if let Some(n) = io_worker_threads(cores, env.as_deref()) {
            builder.worker_threads(n);
        }
        if let Ok(rt) = builder.build() {
            napi::bindgen_prelude::create_custom_tokio_runtime(rt);
        }
    });
}
