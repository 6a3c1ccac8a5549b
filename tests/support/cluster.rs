//! A private Redis Cluster of 3 masters (no replicas) on free loopback ports, built from
//! `redis-server --cluster-enabled yes` processes and `redis-cli --cluster create`, for the
//! tests that run against a cluster as well as a single server. `redis-cli` comes from
//! `REDIS_CLI_BIN` or PATH; missing = the test fails with an install hint.

use std::process::Command;
use std::time::{Duration, Instant};

use super::{RedisServer, ServerOptions};

pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

fn cli() -> String {
    std::env::var("REDIS_CLI_BIN").unwrap_or_else(|_| "redis-cli".to_string())
}

impl RedisCluster {
    pub fn start() -> Self {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                RedisServer::start_with(ServerOptions {
                    args: [
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "2000",
                    ]
                    .map(String::from)
                    .to_vec(),
                    ..Default::default()
                })
            })
            .collect();
        let mut args = vec!["--cluster".to_string(), "create".to_string()];
        args.extend(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)));
        args.extend(["--cluster-replicas", "0", "--cluster-yes"].map(String::from));
        let out = Command::new(cli())
            .args(&args)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run `{}` ({e}): the cluster tests need redis-cli (Debian/Ubuntu: \
                 `apt-get install redis-tools`) or REDIS_CLI_BIN pointing at it",
                    cli()
                )
            });
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let c = RedisCluster { nodes };
        c.wait_ok();
        c
    }

    /// `redis://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis://{}", hosts.join(","))
    }

    /// Waits until every node reports `cluster_state:ok`.
    pub fn wait_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self
                .nodes
                .iter()
                .all(|n| n.raw_str(&["CLUSTER", "INFO"]).contains("cluster_state:ok"))
            {
                return;
            }
            assert!(Instant::now() < deadline, "cluster not ok after 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The node that holds `key`'s slot.
    pub fn node_of(&self, key: &str) -> &RedisServer {
        let slot: u64 = self.nodes[0]
            .raw_str(&["CLUSTER", "KEYSLOT", key])
            .trim_start_matches(':')
            .trim()
            .parse()
            .expect("CLUSTER KEYSLOT");
        self.nodes
            .iter()
            .find(|n| {
                n.raw_str(&["CLUSTER", "NODES"])
                    .lines()
                    .any(|l| l.contains("myself") && owns(l, slot))
            })
            .expect("a node owns every slot")
    }

    pub fn node_of_mut(&mut self, key: &str) -> &mut RedisServer {
        let port = self.node_of(key).port;
        self.nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("the node is one of ours")
    }
}

/// Whether a `CLUSTER NODES` line lists `slot` among its ranges.
fn owns(line: &str, slot: u64) -> bool {
    line.split_whitespace()
        .skip(8)
        .any(|r| match r.split_once('-') {
            Some((a, b)) => {
                a.parse::<u64>().is_ok_and(|a| a <= slot)
                    && b.parse::<u64>().is_ok_and(|b| slot <= b)
            }
            None => r.parse::<u64>() == Ok(slot),
        })
}

/// A single server or a cluster, for tests that run against both.
pub enum Backend {
    Single(RedisServer),
    Cluster(RedisCluster),
}

impl Backend {
    pub fn single() -> Self {
        Backend::Single(RedisServer::start())
    }

    pub fn cluster() -> Self {
        Backend::Cluster(RedisCluster::start())
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Backend::Cluster(_))
    }

    pub fn url(&self) -> String {
        match self {
            Backend::Single(s) => s.url(),
            Backend::Cluster(c) => c.url(),
        }
    }

    /// The server holding `key` (the only one, or the cluster node owning its slot).
    pub fn node_of(&self, key: &str) -> &RedisServer {
        match self {
            Backend::Single(s) => s,
            Backend::Cluster(c) => c.node_of(key),
        }
    }

    /// A raw command on the server holding `key`, as text.
    pub fn raw_on(&self, key: &str, args: &[&str]) -> String {
        self.node_of(key).raw_str(args)
    }

    /// A raw command on every server.
    pub fn raw_all(&self, args: &[&str]) {
        match self {
            Backend::Single(s) => {
                s.raw_str(args);
            }
            Backend::Cluster(c) => c.nodes.iter().for_each(|n| {
                n.raw_str(args);
            }),
        }
    }

    /// `calls=` of a command, summed over the servers.
    pub fn command_calls(&self, cmd: &str) -> u64 {
        match self {
            Backend::Single(s) => s.command_calls(cmd),
            Backend::Cluster(c) => c.nodes.iter().map(|n| n.command_calls(cmd)).sum(),
        }
    }

    /// Restarts (SIGKILL, start again empty) the server holding `key`, and waits until it
    /// serves again (on a cluster: until the cluster is ok).
    pub fn restart_node_of(&mut self, key: &str) {
        match self {
            Backend::Single(s) => s.restart(),
            Backend::Cluster(c) => {
                c.node_of_mut(key).restart();
                c.wait_ok();
            }
        }
    }
}

/// `on_both!(a, b)`: runs the async fns `a(backend)`, `b(backend)` of the calling module as
/// tests against a single server and against a cluster (the caller imports `Backend`).
#[allow(unused_macros)]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn single_server() {
                super::$name(super::Backend::single()).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn cluster() {
                super::$name(super::Backend::cluster()).await
            }
        }
    )*};
}
#[allow(unused_imports)]
pub(crate) use on_both;
