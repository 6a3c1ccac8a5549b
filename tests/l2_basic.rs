//! The Redis tier against a real redis-server: values, TTLs, envelope, one round trip for
//! mget, corrupt / foreign values, close.

mod support;

use agent_core_native::cache::l2::{Compression, L2Config, RawL2Options, RedisL2};
use agent_core_native::error::Code;
use support::cluster::{on_both, Backend};
use support::RedisServer;

// These run against a single server and against a Redis Cluster of 3 masters.
on_both!(
    set_get_mget_del_round_trip_under_the_prefix_with_ttl,
    lz4_values_round_trip_through_redis,
    foreign_corrupt_and_deleted_values_are_counted_misses,
);

fn tier(url: String) -> RedisL2 {
    RedisL2::new(L2Config::new(url).unwrap()).unwrap()
}

fn tier_with(raw: RawL2Options) -> RedisL2 {
    RedisL2::new(L2Config::from_raw(raw).unwrap()).unwrap()
}

async fn set_get_mget_del_round_trip_under_the_prefix_with_ttl(server: Backend) {
    let t = tier(server.url());
    assert_eq!(t.get("t1").await.unwrap(), None);
    assert!(t.set("t1", br#"{"messages":["hi"]}"#, None).await.unwrap());
    assert!(t
        .set("t2", "{\"ü\":\"ß\"}".as_bytes(), Some(120))
        .await
        .unwrap());
    assert_eq!(
        t.get("t1").await.unwrap().as_deref(),
        Some(r#"{"messages":["hi"]}"#)
    );

    // Stored under keyPrefix + key, in the envelope, with the TTL.
    let raw = server
        .node_of("agent-core:conv:{t1}")
        .raw(&[b"GET", b"agent-core:conv:{t1}"]);
    assert!(raw.windows(4).any(|w| w == [0xAC, 0x43, 1, 0]), "{raw:?}");
    let ttl = server
        .node_of("agent-core:conv:{t1}")
        .raw_int(&["TTL", "agent-core:conv:{t1}"]);
    assert!((3590..=3600).contains(&ttl), "ttl {ttl}");
    let ttl2 = server
        .node_of("agent-core:conv:{t2}")
        .raw_int(&["TTL", "agent-core:conv:{t2}"]);
    assert!((110..=120).contains(&ttl2), "ttl {ttl2}");

    let got = t.mget(&["t2", "absent", "t1"]).await.unwrap();
    assert_eq!(got[0].as_deref(), Some("{\"ü\":\"ß\"}"));
    assert_eq!(got[1], None);
    assert_eq!(got[2].as_deref(), Some(r#"{"messages":["hi"]}"#));
    assert_eq!(
        t.mget::<&str>(&[]).await.unwrap(),
        Vec::<Option<String>>::new()
    );

    assert_eq!(t.del(&["t1", "t2", "absent"]).await.unwrap(), 2);
    assert_eq!(t.get("t1").await.unwrap(), None);
    let s = t.stats();
    assert_eq!(s.sets, 2);
    assert_eq!(s.dels, 2);
    assert_eq!(s.hits, 3);
    assert_eq!(s.redis_errors, 0);
    assert_eq!(s.corrupt, 0);
    t.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mget_is_one_round_trip() {
    let server = RedisServer::start();
    let t = tier(server.url());
    for i in 0..20 {
        assert!(t.set(&format!("k{i}"), b"{}", None).await.unwrap());
    }
    let before_mget = server.command_calls("mget");
    let before_get = server.command_calls("get");
    let keys: Vec<String> = (0..25).map(|i| format!("k{i}")).collect();
    let got = t.mget(&keys).await.unwrap();
    assert_eq!(got.iter().filter(|v| v.is_some()).count(), 20);
    assert_eq!(server.command_calls("mget") - before_mget, 1);
    assert_eq!(server.command_calls("get") - before_get, 0);
    t.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_prefix_db_index_and_ttl_jitter() {
    let server = RedisServer::start();
    let url = format!("redis://127.0.0.1:{}/3", server.port);
    let t = tier_with(RawL2Options {
        url: Some(url),
        key_prefix: Some("app:".into()),
        ttl_seconds: Some(100.0),
        ttl_jitter_seconds: Some(50.0),
        ..Default::default()
    });
    for i in 0..10 {
        assert!(t.set(&format!("j{i}"), b"1", None).await.unwrap());
    }
    // Not in db 0, but in db 3, under the prefix.
    assert!(server.raw_str(&["EXISTS", "app:{j0}"]).starts_with(":0"));
    let mut ttls = Vec::new();
    for i in 0..10 {
        let reply = server.raw_str(&[
            "EVAL",
            &format!("redis.call('SELECT',3) return redis.call('TTL','app:{{j{i}}}')"),
            "0",
        ]);
        ttls.push(reply.trim_start_matches(':').trim().parse::<i64>().unwrap());
    }
    assert!(ttls.iter().all(|t| (99..=150).contains(t)), "{ttls:?}");
    assert!(
        ttls.iter().any(|t| *t > 100),
        "jitter never applied: {ttls:?}"
    );
    assert!((10..=60).contains(&t.ttl_for(Some(10))));
    t.close().await;
}

async fn lz4_values_round_trip_through_redis(server: Backend) {
    let t = tier_with(RawL2Options {
        url: Some(server.url()),
        compression: Some("lz4".into()),
        compress_threshold_bytes: Some(1024.0),
        ..Default::default()
    });
    let big = format!(
        "[{}]",
        vec![r#"{"role":"assistant","content":"the same words again and again"}"#; 500].join(",")
    );
    assert!(t.set("big", big.as_bytes(), None).await.unwrap());
    let stored: i64 = server
        .raw_on(
            "agent-core:conv:{big}",
            &["STRLEN", "agent-core:conv:{big}"],
        )
        .trim_start_matches(':')
        .trim()
        .parse()
        .unwrap();
    assert!(
        (stored as usize) < big.len() / 4,
        "stored {stored} of {}",
        big.len()
    );
    assert_eq!(t.get("big").await.unwrap().as_deref(), Some(big.as_str()));
    assert_eq!(t.stats().compressed_writes, 1);
    // A tier that writes uncompressed still reads compressed values (and vice versa).
    let plain = tier_with(RawL2Options {
        url: Some(server.url()),
        compression: Some("none".into()),
        ..Default::default()
    });
    assert_eq!(
        plain.get("big").await.unwrap().as_deref(),
        Some(big.as_str())
    );
    assert!(plain.set("big2", big.as_bytes(), None).await.unwrap());
    assert_eq!(t.get("big2").await.unwrap().as_deref(), Some(big.as_str()));
    plain.close().await;
    t.close().await;
}

async fn foreign_corrupt_and_deleted_values_are_counted_misses(server: Backend) {
    let t = tier(server.url());
    server.node_of("agent-core:conv:{plain}").raw(&[
        b"SET",
        b"agent-core:conv:{plain}",
        b"{\"not\":\"ours\"}",
    ]);
    server.node_of("agent-core:conv:{v9}").raw(&[
        b"SET",
        b"agent-core:conv:{v9}",
        b"\xAC\x43\x09\x00{}",
    ]);
    server.node_of("agent-core:conv:{badutf8}").raw(&[
        b"SET",
        b"agent-core:conv:{badutf8}",
        b"\xAC\x43\x01\x00\xff\xfe",
    ]);
    server.node_of("agent-core:conv:{badlz4}").raw(&[
        b"SET",
        b"agent-core:conv:{badlz4}",
        b"\xAC\x43\x01\x01\x10\x00\x00\x00\xff\xff\xff",
    ]);
    server
        .node_of("agent-core:conv:{list}")
        .raw(&[b"RPUSH", b"agent-core:conv:{list}", b"x"]);
    for k in ["plain", "v9", "badutf8", "badlz4", "list"] {
        assert_eq!(t.get(k).await.unwrap(), None, "{k}");
    }
    // Reads are MGETs (value and version together), and MGET answers nil for a key of
    // another type (the list): a plain miss, not "corrupt"; the next write replaces it.
    assert_eq!(t.stats().corrupt, 4);
    let got = t.mget(&["plain", "list", "absent"]).await.unwrap();
    assert_eq!(got, vec![None, None, None]);
    assert_eq!(t.stats().corrupt, 5);
    assert_eq!(t.stats().redis_errors, 0);

    assert!(t.set("gone", b"[1]", None).await.unwrap());
    server.raw_on("agent-core:conv:{gone}", &["DEL", "agent-core:conv:{gone}"]);
    assert_eq!(t.get("gone").await.unwrap(), None);
    assert_eq!(t.stats().corrupt, 5);
    assert!(t.set("list", b"[2]", None).await.unwrap());
    assert_eq!(t.get("list").await.unwrap().as_deref(), Some("[2]"));
    t.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_keys_and_calls_after_close_are_caller_errors() {
    let server = RedisServer::start();
    let t = tier(server.url());
    assert_eq!(t.get("").await.unwrap_err().code, Code::InvalidKey);
    let long = "x".repeat(70_000);
    assert_eq!(
        t.set(&long, b"1", None).await.unwrap_err().code,
        Code::InvalidKey
    );
    assert_eq!(
        t.mget(&["ok", ""]).await.unwrap_err().code,
        Code::InvalidKey
    );
    t.close().await;
    t.close().await;
    assert_eq!(t.get("a").await.unwrap_err().code, Code::Closed);
    assert!(!t.health().await.up);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_releases_the_connection() {
    let server = RedisServer::start();
    let t = tier(server.url());
    assert_eq!(server.clients(), 0);
    assert!(t.set("a", b"1", None).await.unwrap());
    assert_eq!(server.clients(), 1);
    t.close().await;
    server.until_no_clients().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_up_latency_and_closed_circuit() {
    let server = RedisServer::start();
    let t = tier(server.url());
    let h = t.health().await;
    assert!(h.up, "{h:?}");
    assert!(h.latency_ms.unwrap() < 50.0);
    assert_eq!(h.circuit.as_str(), "closed");
    assert_eq!(Compression::Lz4 { threshold: 4096 }, t.config().compression);
    t.close().await;
}
