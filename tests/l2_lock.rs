//! The distributed lock and the fenced write against a real redis-server: exclusion,
//! release by the owner only, expiry, a lost lock writes nothing, version checks, retries
//! that must not apply twice, Redis down, and many holders incrementing one counter.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_core_native::cache::l2::{L2Config, RawL2Options, RedisL2};
use agent_core_native::cache::lock::{Acquire, Fenced, Versioned};
use support::RedisServer;

fn tier(url: String) -> RedisL2 {
    RedisL2::new(L2Config::new(url).unwrap()).unwrap()
}

const LONG: Duration = Duration::from_secs(5);

fn in_(d: Duration) -> Instant {
    Instant::now() + d
}

async fn held(t: &RedisL2, id: &str, ttl: Duration) -> (String, Versioned) {
    match t.lock(id, ttl, LONG).await.unwrap() {
        Acquire::Held { token, current } => (token, current),
        other => panic!("expected the lock, got {other:?}"),
    }
}

/// A fenced write with the default TTL and a 5 s deadline.
async fn write(t: &RedisL2, id: &str, token: &str, expected: u64, payload: &[u8]) -> Fenced {
    t.write_fenced(id, token, expected, payload, None, in_(LONG))
        .await
        .unwrap()
}

/// The thread's version as Redis holds it (`GET ...:ver`); versions follow the rule of
/// every change script: `max(old + 1, Redis TIME in µs)`.
fn stored_ver(server: &RedisServer, id: &str) -> u64 {
    let r = server.raw_str(&["GET", &format!("agent-core:conv:{{{id}}}:ver")]);
    r.lines().nth(1).unwrap_or_default().parse().unwrap_or(0)
}

fn int(reply: String) -> i64 {
    reply.trim_start_matches(':').trim().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_holder_at_a_time_and_only_the_owner_releases() {
    let server = RedisServer::start();
    let a = tier(server.url());
    let b = tier(server.url());
    let (token, current) = held(&a, "t1", LONG).await;
    assert_eq!(current, Versioned::default());
    assert_eq!(token.len(), 32);
    let key = "agent-core:conv:{t1}:lock";
    assert_eq!(server.raw_str(&["GET", key]), format!("$32\r\n{token}\r\n"));
    let pttl = int(server.raw_str(&["PTTL", key]));
    assert!((4000..=5000).contains(&pttl), "pttl {pttl}");

    // B waits its whole wait, then gives up with Busy.
    let t0 = Instant::now();
    let got = b.lock("t1", LONG, Duration::from_millis(80)).await.unwrap();
    assert_eq!(got, Acquire::Busy);
    assert!(
        t0.elapsed() >= Duration::from_millis(80),
        "{:?}",
        t0.elapsed()
    );

    // A token that is not the holder's releases nothing.
    assert!(!b
        .unlock("t1", "0123456789abcdef0123456789abcdef")
        .await
        .unwrap());
    assert!(server.raw_str(&["EXISTS", key]).starts_with(":1"));
    assert!(a.unlock("t1", &token).await.unwrap());
    assert!(server.raw_str(&["EXISTS", key]).starts_with(":0"));
    // Released: B gets it at once.
    let t0 = Instant::now();
    let (tb, _) = held(&b, "t1", LONG).await;
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert_ne!(tb, token);
    // A stale release (A's old token) does not free B's lock.
    assert!(!a.unlock("t1", &token).await.unwrap());
    assert!(server.raw_str(&["EXISTS", key]).starts_with(":1"));
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_gets_the_lock_as_soon_as_it_is_released() {
    let server = RedisServer::start();
    let a = Arc::new(tier(server.url()));
    let b = tier(server.url());
    let (token, _) = held(&a, "t", LONG).await;
    let a2 = a.clone();
    let releaser = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(a2.unlock("t", &token).await.unwrap());
    });
    let t0 = Instant::now();
    held(&b, "t", LONG).await;
    let waited = t0.elapsed();
    releaser.await.unwrap();
    // Released at ~100 ms; the backoff (<= 32 ms a step) finds it soon after.
    assert!(waited >= Duration::from_millis(90), "{waited:?}");
    assert!(waited < Duration::from_millis(600), "{waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fenced_write_stores_value_and_next_version_then_reads_back_under_the_lock() {
    let server = RedisServer::start();
    let t = tier(server.url());
    let (token, cur) = held(&t, "t", LONG).await;
    let w = write(&t, "t", &token, cur.version, br#"{"n":1}"#).await;
    let Fenced::Written(v1) = w else {
        panic!("{w:?}")
    };
    assert!(v1 > 0);
    assert_eq!(stored_ver(&server, "t"), v1);
    let ttl = int(server.raw_str(&["TTL", "agent-core:conv:{t}"]));
    assert!((3590..=3600).contains(&ttl), "ttl {ttl}");
    // The plain read path sees it (same value key).
    assert_eq!(t.get("t").await.unwrap().as_deref(), Some(r#"{"n":1}"#));
    // The write released the lock, leaving a receipt another holder may take at once.
    assert_eq!(
        server.raw_str(&["GET", "agent-core:conv:{t}:lock"]),
        format!("${}\r\n{token}:w:{v1}\r\n", 35 + v1.to_string().len())
    );

    let (token, cur) = held(&t, "t", LONG).await;
    assert_eq!(
        cur,
        Versioned {
            payload: Some(r#"{"n":1}"#.into()),
            version: v1
        }
    );
    let w = t
        .write_fenced("t", &token, v1, br#"{"n":2}"#, Some(60), in_(LONG))
        .await
        .unwrap();
    let Fenced::Written(v2) = w else {
        panic!("{w:?}")
    };
    assert!(v2 > v1, "{v2} after {v1}");
    assert_eq!(stored_ver(&server, "t"), v2);
    let ttl = int(server.raw_str(&["TTL", "agent-core:conv:{t}"]));
    assert!((50..=60).contains(&ttl), "ttl {ttl}");
    // Its owner may still clear its receipt; nobody else can.
    assert!(!t
        .unlock("t", "0123456789abcdef0123456789abcdef")
        .await
        .unwrap());
    assert!(t.unlock("t", &token).await.unwrap());
    assert_eq!(t.stats().sets, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_whose_lock_expired_writes_nothing_and_cannot_release_the_next_one() {
    let server = RedisServer::start();
    let slow = tier(server.url());
    let next = tier(server.url());
    let (old_token, cur) = held(&slow, "t", Duration::from_millis(100)).await;
    assert_eq!(cur.version, 0);
    tokio::time::sleep(Duration::from_millis(250)).await;

    // The lock expired: another holder takes it and writes.
    let (token, cur) = held(&next, "t", LONG).await;
    assert_eq!(cur.version, 0);
    let w = write(&next, "t", &token, 0, br#"{"by":"next"}"#).await;
    let Fenced::Written(v1) = w else {
        panic!("{w:?}")
    };

    // The slow one comes back: lock lost, nothing written, the newer value stays.
    let w = write(&slow, "t", &old_token, 0, br#"{"by":"slow"}"#).await;
    assert_eq!(w, Fenced::LockLost);
    assert_eq!(
        next.get("t").await.unwrap().as_deref(),
        Some(r#"{"by":"next"}"#)
    );
    assert_eq!(stored_ver(&server, "t"), v1);
    assert!(!slow.unlock("t", &old_token).await.unwrap());
    assert!(server
        .raw_str(&["EXISTS", "agent-core:conv:{t}:lock"])
        .starts_with(":1"));
    assert!(next.unlock("t", &token).await.unwrap());

    // Even with no other holder: an expired lock is lost, nothing is written.
    let (tok, cur) = held(&slow, "u", Duration::from_millis(50)).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let w = write(&slow, "u", &tok, cur.version, b"{}").await;
    assert_eq!(w, Fenced::LockLost);
    assert!(server
        .raw_str(&["EXISTS", "agent-core:conv:{u}"])
        .starts_with(":0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_that_moved_under_the_lock_is_a_conflict_and_nothing_is_written() {
    let server = RedisServer::start();
    let t = tier(server.url());
    let (token, cur) = held(&t, "t", LONG).await;
    // A writer that does not take the lock (set / invalidate) bumps the version.
    server.raw_str(&["INCR", "agent-core:conv:{t}:ver"]);
    let w = write(&t, "t", &token, cur.version, b"{}").await;
    assert_eq!(w, Fenced::Conflict(1));
    assert!(server
        .raw_str(&["EXISTS", "agent-core:conv:{t}"])
        .starts_with(":0"));
    // The lock is still ours.
    assert!(t.unlock("t", &token).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeating_an_applied_write_is_recognised_not_applied_twice() {
    let server = RedisServer::start();
    let t = tier(server.url());
    let (token, _) = held(&t, "t", LONG).await;
    let first = write(&t, "t", &token, 0, br#"{"n":1}"#).await;
    // As if the first reply had been lost and the call sent again.
    let again = write(&t, "t", &token, 0, br#"{"n":1}"#).await;
    let Fenced::Written(v1) = first else {
        panic!("{first:?}")
    };
    assert_eq!(again, Fenced::Written(v1));
    assert_eq!(stored_ver(&server, "t"), v1);
    // Once another holder took the lock over, the receipt is gone: a late repeat cannot
    // tell whether it was applied and is refused (nothing is written twice).
    let other = tier(server.url());
    let (tb, cur) = held(&other, "t", LONG).await;
    assert_eq!(cur.version, v1);
    let late = write(&t, "t", &token, 0, br#"{"n":1}"#).await;
    assert_eq!(late, Fenced::LockLost);
    assert!(other.unlock("t", &tb).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_are_reloaded_after_a_script_flush() {
    let server = RedisServer::start();
    let t = tier(server.url());
    let (token, _) = held(&t, "t", LONG).await;
    assert!(t.unlock("t", &token).await.unwrap());
    let evalsha_before = server.command_calls("evalsha");
    assert!(evalsha_before >= 2, "evalsha calls {evalsha_before}");
    server.raw_str(&["SCRIPT", "FLUSH"]);
    let (token, _) = held(&t, "t", LONG).await;
    assert!(t.unlock("t", &token).await.unwrap());
    // The tier's one script path (redis::Script) answers NOSCRIPT by loading the body
    // again (SCRIPT LOAD or EVAL), then runs it.
    let reloads = server.command_calls("script|load") + server.command_calls("eval");
    assert!(reloads >= 1, "no reload after SCRIPT FLUSH");
    assert!(server.command_calls("evalsha") > evalsha_before);
    assert_eq!(t.stats().redis_errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_is_unavailable_soon_never_busy_or_an_error() {
    let server = RedisServer::not_started();
    let t = tier(server.url());
    let t0 = Instant::now();
    let got = t.lock("t", LONG, Duration::from_secs(10)).await.unwrap();
    assert_eq!(got, Acquire::Unavailable);
    // The breaker opens after 5 failures: no need to wait the full 10 s.
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    let w = t
        .write_fenced("t", "tok", 0, b"{}", None, in_(Duration::from_millis(200)))
        .await
        .unwrap();
    assert_eq!(w, Fenced::Unreachable);
    assert!(!t.unlock("t", "tok").await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_are_errors() {
    let server = RedisServer::not_started();
    let t = tier(server.url());
    let e = t.lock("", LONG, LONG).await.unwrap_err();
    assert_eq!(e.code.as_str(), "ERR_INVALID_KEY");
    let e = t.lock("t", Duration::ZERO, LONG).await.unwrap_err();
    assert_eq!(e.code.as_str(), "ERR_INVALID_OPTION");
    t.close().await;
    let e = t.lock("t", LONG, LONG).await.unwrap_err();
    assert_eq!(e.code.as_str(), "ERR_CLOSED");
}

/// Eight holders (each its own connection) x 40 read-modify-write increments of one counter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_holders_lose_no_increment() {
    let server = RedisServer::start();
    let url = server.url();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let t = tier(url.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..40 {
                let (token, cur) = held(&t, "counter", LONG).await;
                let n: u64 = cur.payload.as_deref().map_or(0, |p| p.parse().unwrap());
                tokio::task::yield_now().await;
                let w = write(
                    &t,
                    "counter",
                    &token,
                    cur.version,
                    (n + 1).to_string().as_bytes(),
                )
                .await;
                // The write released the lock.
                assert!(matches!(w, Fenced::Written(_)), "{w:?}");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let check = tier(url);
    assert_eq!(check.get("counter").await.unwrap().as_deref(), Some("320"));
    // (The version follows Redis's clock, so it no longer counts writes; the value does.)
    assert!(stored_ver(&server, "counter") > 0);
}

/// Holders whose work sometimes outlasts the lock: every increment either lands (and is
/// counted) or is refused with LockLost; none is lost silently, none lands twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_holders_with_short_locks_lose_nothing_silently() {
    let server = RedisServer::start();
    let url = server.url();
    let written = Arc::new(AtomicU64::new(0));
    let lost = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..4u64 {
        let t = tier(url.clone());
        let (written, lost) = (written.clone(), lost.clone());
        tasks.push(tokio::spawn(async move {
            for j in 0..15u64 {
                let (token, cur) = held(&t, "c", Duration::from_millis(40)).await;
                let n: u64 = cur.payload.as_deref().map_or(0, |p| p.parse().unwrap());
                // One in three outlasts the 40 ms lock.
                let work = if (i + j) % 3 == 0 { 70 } else { 1 };
                tokio::time::sleep(Duration::from_millis(work)).await;
                match write(&t, "c", &token, cur.version, (n + 1).to_string().as_bytes()).await {
                    Fenced::Written(_) => written.fetch_add(1, Ordering::Relaxed),
                    Fenced::LockLost => lost.fetch_add(1, Ordering::Relaxed),
                    other => panic!("unexpected {other:?}"),
                };
                t.unlock("c", &token).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let (w, l) = (
        written.load(Ordering::Relaxed),
        lost.load(Ordering::Relaxed),
    );
    assert_eq!(w + l, 60);
    assert!(l >= 1, "no lock was lost: the test did not exercise expiry");
    let check = tier(url);
    assert_eq!(check.get("c").await.unwrap(), Some(w.to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_are_read_with_their_version_even_when_compressed() {
    let server = RedisServer::start();
    let t = RedisL2::new(
        L2Config::from_raw(RawL2Options {
            url: Some(server.url()),
            ..Default::default()
        })
        .unwrap(),
    )
    .unwrap();
    let big = format!("\"{}\"", "x".repeat(20_000));
    let (token, _) = held(&t, "big", LONG).await;
    let w = write(&t, "big", &token, 0, big.as_bytes()).await;
    let Fenced::Written(v1) = w else {
        panic!("{w:?}")
    };
    t.unlock("big", &token).await.unwrap();
    let stored = int(server.raw_str(&["STRLEN", "agent-core:conv:{big}"]));
    assert!(stored < 2_000, "stored {stored} bytes: not compressed");
    let (token, cur) = held(&t, "big", LONG).await;
    assert_eq!(cur.payload.as_deref(), Some(big.as_str()));
    assert_eq!(cur.version, v1);
    t.unlock("big", &token).await.unwrap();
}
