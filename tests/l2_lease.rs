//! The load lease of a cold key (distributed single flight) against a real redis-server:
//! one winner, the others see it held, the winner's fill releases it, a fill never
//! overwrites a newer write, a dead leader's lease expires.

mod support;

use std::sync::Arc;
use std::time::Duration;

use agent_core_native::cache::l2::{L2Config, RedisL2};
use agent_core_native::cache::lock::{Lease, Versioned};
use support::RedisServer;

fn tier(url: String) -> RedisL2 {
    RedisL2::new(L2Config::new(url).unwrap()).unwrap()
}

const LEASE: Duration = Duration::from_secs(5);

/// The thread's version as Redis holds it (`GET ...:ver`); versions follow the rule of
/// every change script: `max(old + 1, Redis TIME in µs)`.
fn stored_ver(server: &RedisServer, id: &str) -> u64 {
    let r = server.raw_str(&["GET", &format!("agent-core:conv:{{{id}}}:ver")]);
    r.lines().nth(1).unwrap_or_default().parse().unwrap_or(0)
}

fn won(l: Lease) -> (String, u64) {
    match l {
        Lease::Won { token, version } => (token, version),
        other => panic!("expected to win the lease, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_winner_the_others_wait_then_read_its_fill() {
    let server = RedisServer::start();
    let a = tier(server.url());
    let b = tier(server.url());
    let (token, version) = won(a.lease("t", LEASE).await.unwrap());
    assert_eq!(version, 0);
    assert_eq!(
        server.raw_str(&["GET", "agent-core:conv:{t}:lease"]),
        format!("$32\r\n{token}\r\n")
    );
    match b.lease("t", LEASE).await.unwrap() {
        Lease::Held { left } => assert!(left > Duration::from_secs(4) && left <= LEASE, "{left:?}"),
        other => panic!("expected held, got {other:?}"),
    }
    let v1 = a
        .fill_leased("t", &token, version, br#"{"v":1}"#, None)
        .await
        .unwrap()
        .unwrap();
    assert!(v1 > 0);
    assert_eq!(stored_ver(&server, "t"), v1);
    // Filled and released in one step.
    assert!(server
        .raw_str(&["EXISTS", "agent-core:conv:{t}:lease"])
        .starts_with(":0"));
    assert_eq!(
        b.lease("t", LEASE).await.unwrap(),
        Lease::Hit(Versioned {
            payload: Some(r#"{"v":1}"#.into()),
            version: v1
        })
    );
    assert_eq!(a.get("t").await.unwrap().as_deref(), Some(r#"{"v":1}"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_never_overwrites_a_write_made_since_the_miss() {
    let server = RedisServer::start();
    let t = tier(server.url());
    let (token, version) = won(t.lease("t", LEASE).await.unwrap());
    // Someone writes the thread while the loader runs (version 1).
    server.raw_str(&["INCR", "agent-core:conv:{t}:ver"]);
    server.raw_str(&["SET", "agent-core:conv:{t}", "newer"]);
    assert_eq!(
        t.fill_leased("t", &token, version, b"{}", None)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        server.raw_str(&["GET", "agent-core:conv:{t}"]),
        "$5\r\nnewer\r\n"
    );
    assert_eq!(
        server.raw_str(&["GET", "agent-core:conv:{t}:ver"]),
        "$1\r\n1\r\n"
    );
    // The lease is released all the same.
    assert!(server
        .raw_str(&["EXISTS", "agent-core:conv:{t}:lease"])
        .starts_with(":0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_leaders_lease_expires_and_only_the_owner_gives_it_up() {
    let server = RedisServer::start();
    let a = tier(server.url());
    let b = tier(server.url());
    let (token, _) = won(a.lease("t", Duration::from_millis(100)).await.unwrap());
    assert!(!b.unlease("t", "not-the-token").await.unwrap());
    assert!(matches!(
        b.lease("t", LEASE).await.unwrap(),
        Lease::Held { .. }
    ));
    // The leader never fills (it died): the lease runs out and someone else takes it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (tb, _) = won(b.lease("t", LEASE).await.unwrap());
    // The dead leader's late fill writes (the version did not move) but cannot release
    // b's lease.
    let v = a.fill_leased("t", &token, 0, b"1", None).await.unwrap();
    assert!(v.is_some_and(|v| v > 0), "{v:?}");
    assert_eq!(v, Some(stored_ver(&server, "t")));
    assert_eq!(
        server.raw_str(&["GET", "agent-core:conv:{t}:lease"]),
        format!("$32\r\n{tb}\r\n")
    );
    // b's own fill is then skipped (a write happened since its miss), and frees the lease.
    assert_eq!(b.fill_leased("t", &tb, 0, b"2", None).await.unwrap(), None);
    assert_eq!(a.get("t").await.unwrap().as_deref(), Some("1"));
    let (tc, _) = won(a.lease("u", LEASE).await.unwrap());
    assert!(a.unlease("u", &tc).await.unwrap());
    assert!(!a.unlease("u", &tc).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_racers_one_winner() {
    let server = RedisServer::start();
    let url = server.url();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let t = Arc::new(tier(url.clone()));
        tasks.push(tokio::spawn(async move {
            t.lease("cold", LEASE).await.unwrap()
        }));
    }
    let mut winners = 0;
    for task in tasks {
        match task.await.unwrap() {
            Lease::Won { .. } => winners += 1,
            Lease::Held { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(winners, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_or_a_foreign_value_means_load_without_a_lease() {
    let down = RedisServer::not_started();
    let t = tier(down.url());
    assert_eq!(t.lease("t", LEASE).await.unwrap(), Lease::Unavailable);
    assert_eq!(t.fill_leased("t", "x", 0, b"{}", None).await.unwrap(), None);

    let server = RedisServer::start();
    let t = tier(server.url());
    server.raw_str(&["SET", "agent-core:conv:{t}", "not an envelope"]);
    assert_eq!(t.lease("t", LEASE).await.unwrap(), Lease::Unavailable);
    assert_eq!(t.stats().corrupt, 1);
    let e = t.lease("t", Duration::ZERO).await.unwrap_err();
    assert!(e.message.contains("loadLeaseMs"), "{}", e.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_holder_renews_its_lease() {
    let server = RedisServer::start();
    let t = tier(server.url());
    let (token, _) = won(t.lease("t", Duration::from_millis(300)).await.unwrap());
    assert!(!t.renew_lease("t", "someone-else", LEASE).await.unwrap());
    assert!(t.renew_lease("t", &token, LEASE).await.unwrap());
    let pttl: i64 = server
        .raw_str(&["PTTL", "agent-core:conv:{t}:lease"])
        .trim_start_matches(':')
        .trim()
        .parse()
        .unwrap();
    assert!(pttl > 4000, "pttl {pttl}");
    // Renewed past its first expiry: still held.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(matches!(
        t.lease("t", LEASE).await.unwrap(),
        Lease::Held { .. }
    ));
    assert!(t.unlease("t", &token).await.unwrap());
    assert!(!t.renew_lease("t", &token, LEASE).await.unwrap());
}
