//! `rediss://`: the tier talks TLS (rustls) to a redis-server serving TLS only, trusting a
//! CA made for the test (handed over through SSL_CERT_FILE, which the system root store
//! loader reads). Its own test binary, so the environment variable touches nothing else.

mod support;

use agent_core_native::cache::l2::{L2Config, RedisL2};
use support::{RedisServer, ServerOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_acl_user_round_trips() {
    let server = RedisServer::start_with(ServerOptions {
        tls: true,
        acl_user: Some(("tls-user".into(), "tls-pa55".into())),
        ..Default::default()
    });
    std::env::set_var("SSL_CERT_FILE", server.ca_file());
    let url = server.url();
    assert!(url.starts_with("rediss://"));
    let t = RedisL2::new(
        L2Config::from_raw(agent_core_native::cache::l2::RawL2Options {
            url: Some(url),
            timeout_ms: Some(1000.0),
            ..Default::default()
        })
        .unwrap(),
    )
    .unwrap();
    assert!(
        t.set("secure", b"{\"tls\":true}", None).await.unwrap(),
        "{:?}",
        t.last_error()
    );
    assert_eq!(
        t.get("secure").await.unwrap().as_deref(),
        Some("{\"tls\":true}")
    );
    assert!(t.health().await.up);
    t.close().await;

    // Plain redis:// to the TLS port: misses, no error to the caller.
    let plain =
        RedisL2::new(L2Config::new(format!("redis://127.0.0.1:{}/0", server.port)).unwrap())
            .unwrap();
    assert_eq!(plain.get("secure").await.unwrap(), None);
    assert!(plain.stats().redis_errors >= 1);
    plain.close().await;
}
