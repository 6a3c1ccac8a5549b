//! The invalidation bus against a real redis-server and a real Redis Cluster of 3 masters
//! (sharded pub/sub): the first subscription announced, delivery with versions, own messages
//! ignored, foreign ones tolerated, re-subscription after a restart (or a first subscription
//! after failed attempts) announced as a resync, and close() ending the subscriber.

mod support;

use std::sync::Arc;
use std::time::Duration;

use agent_core_native::cache::l2::{BusEvent, Kind, L2Config, RedisL2, Tags};
use support::cluster::{on_both, Backend};
use support::RedisServer;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

const CHANNEL: &str = "agent-core:conv:bus";

on_both!(
    changes_arrive_with_their_versions_and_own_messages_are_ignored,
    a_restart_is_followed_by_a_resync_before_any_later_message,
    close_ends_the_subscriber_and_its_connection,
);

fn tier(url: String) -> Arc<RedisL2> {
    Arc::new(RedisL2::new(L2Config::new(url).unwrap()).unwrap())
}

/// Starts `t`'s subscriber; its events arrive on the receiver.
fn subscribe(t: &Arc<RedisL2>) -> UnboundedReceiver<BusEvent> {
    let (tx, rx) = unbounded_channel();
    let fut = t
        .bus_subscriber(Box::new(move |events| {
            events.into_iter().all(|e| tx.send(e).is_ok())
        }))
        .unwrap();
    tokio::spawn(fut);
    rx
}

/// Two tiers on `url`: `a` writes, `b` listens (subscribed when this returns, its
/// `Subscribed` event taken). `ordered`: what that event must say (a single server: the
/// SUBSCRIBE went first on the tier's connection).
async fn writer_and_listener(
    url: String,
    ordered: bool,
) -> (Arc<RedisL2>, Arc<RedisL2>, UnboundedReceiver<BusEvent>) {
    let a = tier(url.clone());
    let b = tier(url);
    let mut rx = subscribe(&b);
    until_connected(&b).await;
    // The first subscription, at the first attempt, is announced as such, before anything
    // else, and is not a resync.
    assert_eq!(next(&mut rx).await, BusEvent::Subscribed { ordered });
    assert_eq!(b.stats().bus_resyncs, 0);
    (a, b, rx)
}

async fn until_connected(t: &RedisL2) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !t.bus_connected() {
        assert!(tokio::time::Instant::now() < deadline, "never subscribed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn next(rx: &mut UnboundedReceiver<BusEvent>) -> BusEvent {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("no bus event within 5 s")
        .expect("subscriber ended")
}

/// Asserts that the next event is the change of `key` to `version`.
async fn expect_change(rx: &mut UnboundedReceiver<BusEvent>, key: &str, version: u64) {
    assert_eq!(
        next(rx).await,
        BusEvent::Changed {
            key: key.into(),
            version
        }
    );
}

async fn changes_arrive_with_their_versions_and_own_messages_are_ignored(server: Backend) {
    let (a, b, mut rx) = writer_and_listener(server.url(), !server.is_cluster()).await;

    let v = a.write("k", b"1", None, Tags::Keep).await.unwrap().unwrap();
    expect_change(&mut rx, "k", v).await;
    let inv = a.invalidate("k", None).await.unwrap().unwrap();
    expect_change(&mut rx, "k", inv.version).await;
    assert!(a.publish("x", 7, Kind::Write).await);
    expect_change(&mut rx, "x", 7).await;
    // b's own writes, and foreign text on the channel, never reach its sink.
    b.write("own", b"1", None, Tags::Keep)
        .await
        .unwrap()
        .unwrap();
    let publish = if server.is_cluster() {
        "SPUBLISH"
    } else {
        "PUBLISH"
    };
    server.raw_on(CHANNEL, &[publish, CHANNEL, "not json"]);
    server.raw_on(CHANNEL, &[publish, CHANNEL, r#"{"k":"q","t":"w"}"#]);
    let v2 = a
        .write("last", b"1", None, Tags::Keep)
        .await
        .unwrap()
        .unwrap();
    expect_change(&mut rx, "last", v2).await;
    let s = b.stats();
    assert_eq!((s.bus_received, s.bus_own, s.bus_resyncs), (4, 1, 0));
    assert_eq!(a.stats().published, 4);
    a.close().await;
    b.close().await;
}

async fn a_restart_is_followed_by_a_resync_before_any_later_message(mut server: Backend) {
    let (a, b, mut rx) = writer_and_listener(server.url(), !server.is_cluster()).await;
    server.restart_node_of(CHANNEL);
    assert_eq!(next(&mut rx).await, BusEvent::Resync);
    assert_eq!(b.stats().bus_resyncs, 1);
    until_connected(&b).await;
    let v = loop {
        // a's own connection reconnects on its first calls after the restart.
        if let Some(v) = a.write("k", b"1", None, Tags::Keep).await.unwrap() {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    expect_change(&mut rx, "k", v).await;
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_single_server_the_subscriber_rides_the_tiers_own_connection() {
    let server = RedisServer::start();
    let (a, b, mut rx) = writer_and_listener(server.url(), true).await;
    assert_eq!(
        server.clients(),
        1,
        "b's subscription alone opened one connection"
    );
    b.write("own", b"1", None, Tags::Keep)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        b.get("own").await.unwrap().as_deref(),
        Some("1"),
        "commands run on the subscribed connection"
    );
    let v = a.write("k", b"1", None, Tags::Keep).await.unwrap().unwrap();
    expect_change(&mut rx, "k", v).await;
    assert_eq!(server.clients(), 2, "one for a, one for b");
    // Killing that one connection ends the subscription too: b re-subscribes on a new
    // connection, which its commands use as well.
    server.raw_str(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    assert_eq!(next(&mut rx).await, BusEvent::Resync);
    until_connected(&b).await;
    assert_eq!(b.get("own").await.unwrap().as_deref(), Some("1"));
    assert_eq!(server.clients(), 2);
    a.close().await;
    b.close().await;
    server.until_no_clients().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_the_subscriber_stops_a_reopened_connection_subscribes_to_nothing() {
    let server = RedisServer::start();
    let (a, b, _rx) = writer_and_listener(server.url(), true).await;
    let subscribers = || server.raw_str(&["PUBSUB", "NUMSUB", CHANNEL]);
    assert!(subscribers().ends_with(":1\r\n"), "{}", subscribers());
    b.stop_bus();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while b.bus_connected() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the subscriber did not stop"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // b's connection still carries the subscription it had; a new one must not.
    server.raw_str(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        b.write("k", b"1", None, Tags::Keep).await.unwrap();
        if b.get("k").await.unwrap().as_deref() == Some("1") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "b never reconnected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(subscribers().ends_with(":0\r\n"), "{}", subscribers());
    a.close().await;
    b.close().await;
    server.until_no_clients().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_hello_gets_a_subscriber_connection_of_its_own() {
    // HELLO renamed away: what a server older than Redis 6 answers (RESP2 only).
    let server = RedisServer::start_with(support::ServerOptions {
        args: vec!["--rename-command".into(), "HELLO".into(), "".into()],
        ..Default::default()
    });
    // Not ordered: the SUBSCRIBE goes on a connection of its own.
    let (a, b, mut rx) = writer_and_listener(server.url(), false).await;
    b.write("own", b"1", None, Tags::Keep)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.get("own").await.unwrap().as_deref(), Some("1"));
    assert_eq!(server.clients(), 2, "b: commands and its subscriber apart");
    let v = a.write("k", b"1", None, Tags::Keep).await.unwrap().unwrap();
    expect_change(&mut rx, "k", v).await;
    // Scripts' replies read the same (a getOrLoad-style fill, an invalidation).
    let inv = a.invalidate("k", None).await.unwrap().unwrap();
    expect_change(&mut rx, "k", inv.version).await;
    assert_eq!(b.stats().redis_errors, 0);
    a.close().await;
    b.close().await;
    server.until_no_clients().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_at_start_then_subscribed_with_a_resync() {
    let mut server = RedisServer::not_started();
    let b = tier(server.url());
    let mut rx = subscribe(&b);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(!b.bus_connected());
    server.spawn();
    assert_eq!(next(&mut rx).await, BusEvent::Resync);
    until_connected(&b).await;
    b.close().await;
}

async fn close_ends_the_subscriber_and_its_connection(server: Backend) {
    let b = tier(server.url());
    let mut rx = subscribe(&b);
    until_connected(&b).await;
    assert_eq!(
        next(&mut rx).await,
        BusEvent::Subscribed {
            ordered: !server.is_cluster()
        }
    );
    let node = server.node_of(CHANNEL);
    assert_eq!(node.clients(), 1);
    assert!(
        b.bus_subscriber(Box::new(|_| true)).is_err(),
        "one subscriber per tier"
    );
    b.close().await;
    assert!(!b.bus_connected());
    assert!(
        tokio::time::timeout(Duration::from_secs(2), rx.recv())
            .await
            .expect("subscriber still running after close")
            .is_none(),
        "the subscriber dropped its sink"
    );
    node.until_no_clients().await;
}

/// A cluster, and a thread id whose keys live on another node than the bus channel.
fn cluster_with_remote_thread() -> (Backend, String) {
    let cluster = Backend::cluster();
    let bus_port = cluster.node_of(CHANNEL).port;
    let id = (0..1000)
        .map(|i| format!("t{i}"))
        .find(|id| cluster.node_of(&format!("agent-core:conv:{{{id}}}")).port != bus_port)
        .expect("some thread lives on another node");
    (cluster, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_an_announcement_redis_refused_is_published_again() {
    let (cluster, id) = cluster_with_remote_thread();
    let (a, b, mut rx) = writer_and_listener(cluster.url(), false).await;
    let bus_node = cluster.node_of(CHANNEL);
    bus_node.raw_str(&["ACL", "SETUSER", "default", "-spublish"]);
    // The write itself (on another node) goes through; its announcement is refused.
    let v = a.write(&id, b"1", None, Tags::Keep).await.unwrap().unwrap();
    assert_eq!(a.stats().publish_failures, 1);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err(),
        "nothing can arrive while SPUBLISH is refused"
    );
    bus_node.raw_str(&["ACL", "SETUSER", "default", "+spublish"]);
    // a's own subscriber drives the second attempt (within its 1 s tick).
    let _a_rx = subscribe(&a);
    expect_change(&mut rx, &id, v).await;
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_a_write_without_an_answer_is_announced_with_version_zero() {
    let (cluster, id) = cluster_with_remote_thread();
    let (a, b, mut rx) = writer_and_listener(cluster.url(), false).await;
    a.write(&id, b"1", None, Tags::Keep).await.unwrap().unwrap();
    assert!(matches!(next(&mut rx).await, BusEvent::Changed { version, .. } if version > 0));
    // The thread's node holds writes for 300 ms: the script outlives the 50 ms deadline, and
    // may run after all. Other instances are told to drop their copy.
    let node = cluster.node_of(&format!("agent-core:conv:{{{id}}}"));
    node.raw_str(&["CLIENT", "PAUSE", "300", "WRITE"]);
    assert_eq!(a.write(&id, b"2", None, Tags::Keep).await.unwrap(), None);
    expect_change(&mut rx, &id, 0).await;
    a.close().await;
    b.close().await;
}
