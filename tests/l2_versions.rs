//! Versions, conditional fills and tags against a real redis-server, and against a real
//! Redis Cluster of 3 masters (each test runs on both).

mod support;

use agent_core_native::cache::l2::{Fill, L2Config, RedisL2, Tags, Versioned};
use support::cluster::{on_both, Backend};

on_both!(
    every_change_moves_the_version_and_reads_return_it,
    a_fill_never_overwrites_a_newer_write,
    tags_cascade_and_follow_the_threads_current_tags,
    scripts_survive_a_script_cache_flush,
);

fn tier(url: String) -> RedisL2 {
    RedisL2::new(L2Config::new(url).unwrap()).unwrap()
}

async fn every_change_moves_the_version_and_reads_return_it(server: Backend) {
    let t = tier(server.url());
    assert_eq!(
        t.read("a").await.unwrap(),
        Some(Versioned {
            payload: None,
            version: None
        })
    );
    let v1 = t.write("a", b"1", None, Tags::Keep).await.unwrap().unwrap();
    let v2 = t.write("a", b"2", None, Tags::Keep).await.unwrap().unwrap();
    assert!(v2 > v1, "{v1} {v2}");
    // Versions follow the clock (µs), below 2^53 so that JS numbers hold them exactly.
    assert!(v1 > 1_600_000_000_000_000 && v2 < (1u64 << 53), "{v1}");
    let r = t.read("a").await.unwrap().unwrap();
    assert_eq!(r.payload.as_deref(), Some("2"));
    assert_eq!(r.version, Some(v2));
    assert_eq!(
        server.raw_on("{a}", &["GET", "agent-core:conv:{a}:ver"]),
        format!("${}\r\n{v2}\r\n", v2.to_string().len())
    );

    let inv = t.invalidate("a", None).await.unwrap().unwrap();
    assert!(inv.existed && inv.version > v2);
    let r = t.read("a").await.unwrap().unwrap();
    assert_eq!(r.payload, None);
    assert_eq!(r.version, Some(inv.version));
    // Invalidating what is not there still moves the version (another instance may hold it).
    let again = t.invalidate("a", None).await.unwrap().unwrap();
    assert!(!again.existed && again.version > inv.version);

    // Versions never go back, even once the version key has expired with its value.
    server.raw_on("{a}", &["DEL", "agent-core:conv:{a}:ver"]);
    let v3 = t.write("a", b"3", None, Tags::Keep).await.unwrap().unwrap();
    assert!(v3 > again.version);

    // read_many: value + version of each, one MGET (on a cluster, one per node).
    let before = server.command_calls("mget");
    let many = t.read_many(&["a", "none"]).await.unwrap();
    let calls = server.command_calls("mget") - before;
    if server.is_cluster() {
        assert!((1..=2).contains(&calls), "{calls}");
    } else {
        assert_eq!(calls, 1);
    }
    assert_eq!(many[0].as_ref().unwrap().version, Some(v3));
    assert_eq!(many[1].as_ref().unwrap().version, None);
    t.close().await;
}

async fn a_fill_never_overwrites_a_newer_write(server: Backend) {
    let t = tier(server.url());
    // Cold: no version at the miss, none now -> written.
    let seen = t.read("f").await.unwrap().unwrap().version;
    assert_eq!(seen, None);
    let Fill::Written(v1) = t.fill("f", b"\"loaded\"", seen, None).await.unwrap() else {
        panic!("cold fill skipped")
    };
    // A second fill from the same stale miss is skipped (the version moved).
    assert_eq!(
        t.fill("f", b"\"late\"", seen, None).await.unwrap(),
        Fill::Skipped
    );
    // A write after a miss wins over the loader that started before it.
    let seen = t.read("f").await.unwrap().unwrap().version;
    assert_eq!(seen, Some(v1));
    t.write("f", b"\"written\"", None, Tags::Keep)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        t.fill("f", b"\"stale load\"", seen, None).await.unwrap(),
        Fill::Skipped
    );
    assert_eq!(t.get("f").await.unwrap().as_deref(), Some("\"written\""));
    // After an invalidation the fill needs the invalidation's version.
    let inv = t.invalidate("f", None).await.unwrap().unwrap();
    assert_eq!(
        t.fill("f", b"\"x\"", Some(v1), None).await.unwrap(),
        Fill::Skipped
    );
    assert!(matches!(
        t.fill("f", b"\"fresh\"", Some(inv.version), None)
            .await
            .unwrap(),
        Fill::Written(v) if v > inv.version
    ));
    let s = t.stats();
    assert_eq!((s.fills, s.fills_skipped), (2, 3));
    t.close().await;
}

async fn tags_cascade_and_follow_the_threads_current_tags(server: Backend) {
    let t = tier(server.url());
    let tags = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let u1 = tags(&["user:1"]);
    let both = tags(&["user:1", "org:9"]);
    for id in ["a", "b", "c"] {
        t.write(id, b"1", Some(100), Tags::Replace(&u1))
            .await
            .unwrap()
            .unwrap();
    }
    t.write("d", b"1", None, Tags::Replace(&both))
        .await
        .unwrap()
        .unwrap();
    // A write that keeps tags keeps them; one that replaces them drops the old ones.
    t.write("a", b"2", None, Tags::Keep).await.unwrap().unwrap();
    t.write("b", b"2", None, Tags::Replace(&[]))
        .await
        .unwrap()
        .unwrap();
    // Tag sets carry a TTL.
    let ttl = server
        .node_of("{user:1}")
        .raw_int(&["TTL", "agent-core:conv:tag:{user:1}"]);
    assert!((3000..=3600).contains(&ttl), "{ttl}");

    let mut gone = t.invalidate_tag("user:1").await.unwrap().unwrap();
    gone.sort();
    assert_eq!(gone, vec!["a", "c", "d"]);
    for id in ["a", "c", "d"] {
        assert_eq!(t.get(id).await.unwrap(), None, "{id}");
    }
    assert_eq!(t.get("b").await.unwrap().as_deref(), Some("2"));
    // d lost all its tags with its value.
    assert_eq!(t.invalidate_tag("org:9").await.unwrap().unwrap().len(), 0);
    assert_eq!(t.invalidate_tag("user:1").await.unwrap().unwrap().len(), 0);
    assert_eq!(t.invalidate_tag("nobody").await.unwrap().unwrap().len(), 0);
    t.close().await;
}

async fn scripts_survive_a_script_cache_flush(server: Backend) {
    let t = tier(server.url());
    t.write("s", b"1", None, Tags::Keep).await.unwrap().unwrap();
    server.raw_all(&["SCRIPT", "FLUSH"]);
    assert!(t
        .write("s", b"2", None, Tags::Keep)
        .await
        .unwrap()
        .is_some());
    assert!(t.invalidate("s", None).await.unwrap().is_some());
    assert_eq!(t.stats().redis_errors, 0);
    t.close().await;
}
