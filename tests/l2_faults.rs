//! The Redis tier when Redis misbehaves — each test with its own redis-server: down at
//! start, killed and restarted, frozen (SIGSTOP), password-protected (no secret leaks).

mod support;

use std::time::{Duration, Instant};

use agent_core_native::cache::breaker::CircuitState;
use agent_core_native::cache::l2::{L2Config, RawL2Options, RedisL2};
use support::{RedisServer, ServerOptions};

const TIMEOUT_MS: f64 = 50.0;
/// Scheduling slack on a loaded 2-core machine.
const MARGIN: Duration = Duration::from_millis(100);

fn tier(url: String, cooldown_ms: f64) -> RedisL2 {
    RedisL2::new(
        L2Config::from_raw(RawL2Options {
            url: Some(url),
            timeout_ms: Some(TIMEOUT_MS),
            breaker_failure_threshold: Some(3.0),
            breaker_cooldown_ms: Some(cooldown_ms),
            ..Default::default()
        })
        .unwrap(),
    )
    .unwrap()
}

fn bound() -> Duration {
    Duration::from_millis(TIMEOUT_MS as u64) + MARGIN
}

/// Runs a call and asserts it answered within timeoutMs + margin.
macro_rules! timed {
    ($e:expr) => {{
        let t0 = Instant::now();
        let v = $e;
        let took = t0.elapsed();
        assert!(took <= bound(), "{} took {:?}", stringify!($e), took);
        v
    }};
}

/// Repeats set+get until a hit, returning how long that took.
async fn until_hit(t: &RedisL2, key: &str, limit: Duration) -> Duration {
    let t0 = Instant::now();
    loop {
        let _ = timed!(t.set(key, b"{\"v\":1}", None).await.unwrap());
        if timed!(t.get(key).await.unwrap()).is_some() {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < limit,
            "no hit within {limit:?}; stats {:?}",
            t.stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_at_start_then_works_once_redis_appears() {
    let mut server = RedisServer::not_started();
    let t = tier(server.url(), 200.0);
    for i in 0..10 {
        assert_eq!(timed!(t.get(&format!("k{i}")).await.unwrap()), None);
        assert!(!timed!(t.set("k", b"1", None).await.unwrap()));
    }
    let s = t.stats();
    assert!(s.redis_errors >= 3, "{s:?}");
    assert!(s.circuit_opened >= 1, "{s:?}");
    assert!(!t.health().await.up);
    server.spawn();
    let took = until_hit(&t, "k", Duration::from_secs(3)).await;
    eprintln!("down at start: first hit {took:?} after Redis appeared");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(t.health().await.up);
    t.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_restarted_on_the_same_port_recovers_within_two_seconds() {
    let mut server = RedisServer::start();
    let t = tier(server.url(), 1000.0);
    assert!(t.set("a", b"[1]", None).await.unwrap());
    assert!(t.get("a").await.unwrap().is_some());
    server.kill();
    for _ in 0..10 {
        assert_eq!(timed!(t.get("a").await.unwrap()), None);
        assert!(!timed!(t.set("a", b"[2]", None).await.unwrap()));
    }
    assert!(t.stats().redis_errors >= 3);
    server.spawn();
    let took = until_hit(&t, "a", Duration::from_secs(4)).await;
    eprintln!("killed/restarted: hits resumed {took:?} after the restart");
    assert!(took < Duration::from_secs(2), "hits resumed after {took:?}");
    t.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_server_calls_answer_in_time_breaker_opens_probes_and_closes() {
    let server = RedisServer::start();
    let t = tier(server.url(), 300.0);
    assert!(t.set("f", b"[1]", None).await.unwrap());
    server.freeze();
    // Three consecutive timeouts open the circuit.
    for _ in 0..3 {
        assert_eq!(timed!(t.get("f").await.unwrap()), None);
    }
    assert_eq!(t.stats().timeouts, 3);
    assert_eq!(t.circuit(), CircuitState::Open);
    // Open: answered at once without Redis.
    let t0 = Instant::now();
    assert_eq!(t.get("f").await.unwrap(), None);
    assert!(!t.set("f", b"[2]", None).await.unwrap());
    assert!(
        t0.elapsed() < Duration::from_millis(20),
        "{:?}",
        t0.elapsed()
    );
    assert!(t.stats().short_circuited >= 2);
    let h = t.health().await;
    assert!(!h.up);
    assert_eq!(h.circuit, CircuitState::Open);
    // After the cool-down: half-open; the probe still times out -> open again.
    tokio::time::sleep(Duration::from_millis(320)).await;
    assert_eq!(t.circuit(), CircuitState::HalfOpen);
    assert_eq!(timed!(t.get("f").await.unwrap()), None);
    assert_eq!(t.circuit(), CircuitState::Open);
    assert_eq!(t.stats().circuit_opened, 2);
    server.thaw();
    tokio::time::sleep(Duration::from_millis(320)).await;
    assert_eq!(t.circuit(), CircuitState::HalfOpen);
    // The probe succeeds: closed, and the value is there.
    assert_eq!(timed!(t.get("f").await.unwrap()).as_deref(), Some("[1]"));
    assert_eq!(t.circuit(), CircuitState::Closed);
    assert!(t.health().await.up);
    t.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_calls_on_a_frozen_server_all_answer_in_time() {
    let server = RedisServer::start();
    let t = std::sync::Arc::new(tier(server.url(), 1000.0));
    server.freeze();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            let t0 = Instant::now();
            let v = t.get(&format!("k{i}")).await.unwrap();
            (v, t0.elapsed())
        }));
    }
    for task in tasks {
        let (v, took) = task.await.unwrap();
        assert_eq!(v, None);
        assert!(took <= bound(), "{took:?}");
    }
    server.thaw();
    t.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_appear_in_errors_or_health() {
    let password = "S3cr3t-pa55word";
    let server = RedisServer::start_with(ServerOptions {
        acl_user: Some(("alice".into(), password.into())),
        ..Default::default()
    });
    // Right credentials work.
    let ok = tier(server.url(), 1000.0);
    assert!(ok.set("p", b"1", None).await.unwrap());
    assert_eq!(ok.get("p").await.unwrap().as_deref(), Some("1"));
    assert!(ok.health().await.up);
    ok.close().await;

    // Wrong password: misses, counted, and nothing quotes the URL or either password.
    let wrong_pw = "Wr0ng-pa55word";
    let bad_url = format!("redis://alice:{wrong_pw}@127.0.0.1:{}/0", server.port);
    let bad = tier(bad_url.clone(), 1000.0);
    assert_eq!(bad.get("p").await.unwrap(), None);
    assert!(!bad.set("p", b"2", None).await.unwrap());
    assert!(bad.stats().redis_errors >= 2);
    let h = bad.health().await;
    assert!(!h.up);
    let text = format!(
        "{h:?} {:?} {:?} {}",
        bad.last_error(),
        bad.stats(),
        bad.redacted_url()
    );
    assert!(h.last_error.is_some(), "{text}");
    for secret in [password, wrong_pw, bad_url.as_str()] {
        assert!(!text.contains(secret), "leaked {secret:?} in {text}");
    }
    assert!(text.contains("redis://alice:***@127.0.0.1"), "{text}");
    eprintln!("wrong password, as reported: {text}");
    bad.close().await;

    // Options errors do not quote the password either.
    let e = L2Config::new(format!("redis://alice:{password}@127.0.0.1:notaport/0")).unwrap_err();
    assert!(!e.message.contains(password), "{}", e.message);
}
