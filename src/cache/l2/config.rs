//! Options of the Redis tier, validated once at construction. Every refusal is
//! `ERR_INVALID_OPTION` naming the option; a URL is never quoted with its password.

use std::time::Duration;

use crate::cache::breaker::BreakerConfig;
use crate::cache::l2::envelope::Compression;
use crate::cache::l2::seeds;
use crate::error::{Error, Result};

pub const DEFAULT_KEY_PREFIX: &str = "agent-core:conv:";
pub const DEFAULT_TTL_SECONDS: u64 = 3600;
pub const DEFAULT_TIMEOUT_MS: u64 = 50;
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 1000;
pub const DEFAULT_BREAKER_THRESHOLD: u32 = 5;
pub const DEFAULT_BREAKER_COOLDOWN_MS: u64 = 1000;
/// lz4 is on by default for values of 4 KiB and more: even on loopback it made gets and
/// sets of 10 KB - 1 MB conversation JSON faster (less to copy through Redis and the
/// kernel) for a few µs of codec time per 10 KB (benchmark/RESULTS.md, section `redis`);
/// on a real network and in Redis memory the saving is larger. `compression: 'none'` turns
/// it off.
pub const DEFAULT_COMPRESSION: &str = "lz4";
pub const DEFAULT_COMPRESS_THRESHOLD: usize = 4096;
/// Longest key accepted (prefix included).
pub const MAX_KEY_BYTES: usize = 64 * 1024;
const MAX_TTL_SECONDS: f64 = 10.0 * 365.0 * 86400.0;
const MAX_MS: f64 = 3_600_000.0;

/// The options as they come from JS (numbers as `f64`, everything optional but `url`).
#[derive(Debug, Clone, Default)]
pub struct RawL2Options {
    pub url: Option<String>,
    pub key_prefix: Option<String>,
    pub ttl_seconds: Option<f64>,
    pub ttl_jitter_seconds: Option<f64>,
    pub timeout_ms: Option<f64>,
    pub connect_timeout_ms: Option<f64>,
    pub breaker_failure_threshold: Option<f64>,
    pub breaker_cooldown_ms: Option<f64>,
    pub compression: Option<String>,
    pub compress_threshold_bytes: Option<f64>,
    /// Redis Cluster: implied by a URL listing several hosts; `Some(true)` makes a
    /// single-host URL a cluster seed.
    pub cluster: Option<bool>,
}

/// Validated configuration of the tier.
#[derive(Debug, Clone)]
pub struct L2Config {
    /// The URL as given (secret: never shown; see [`L2Config::redacted_url`]).
    pub url: String,
    pub key_prefix: String,
    pub ttl_seconds: u64,
    pub ttl_jitter_seconds: u64,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub breaker: BreakerConfig,
    pub compression: Compression,
    /// One URL per host of `url` (one for a single server; the seed nodes of a cluster).
    pub seeds: Vec<String>,
    /// Redis Cluster (async cluster client, sharded pub/sub) rather than one server.
    pub cluster: bool,
}

impl L2Config {
    /// Defaults for everything but the URL.
    pub fn new(url: impl Into<String>) -> Result<Self> {
        Self::from_raw(RawL2Options {
            url: Some(url.into()),
            ..Default::default()
        })
    }

    pub fn redacted_url(&self) -> String {
        seeds::redact(&self.url)
    }

    pub fn from_raw(raw: RawL2Options) -> Result<Self> {
        let url = raw.url.ok_or_else(|| {
            Error::invalid_option("url", "is required (a redis:// or rediss:// URL)")
        })?;
        let seeds = check_url(&url)?;
        let cluster = raw.cluster.unwrap_or(seeds.len() > 1);
        if !cluster && seeds.len() > 1 {
            return Err(Error::invalid_option(
                "url",
                "lists several hosts, which is a Redis Cluster: cluster cannot be false",
            ));
        }
        if cluster {
            check_cluster_db(&seeds)?;
        }
        let ttl_seconds = int_in("ttlSeconds", raw.ttl_seconds, 1.0, MAX_TTL_SECONDS)?
            .unwrap_or(DEFAULT_TTL_SECONDS);
        let ttl_jitter_seconds = int_in(
            "ttlJitterSeconds",
            raw.ttl_jitter_seconds,
            0.0,
            MAX_TTL_SECONDS,
        )?
        .unwrap_or(0);
        let timeout_ms =
            int_in("timeoutMs", raw.timeout_ms, 1.0, MAX_MS)?.unwrap_or(DEFAULT_TIMEOUT_MS);
        let connect_ms = int_in("connectTimeoutMs", raw.connect_timeout_ms, 1.0, MAX_MS)?
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT_MS);
        let threshold = int_in(
            "breakerFailureThreshold",
            raw.breaker_failure_threshold,
            1.0,
            1e6,
        )?
        .map(|v| v as u32)
        .unwrap_or(DEFAULT_BREAKER_THRESHOLD);
        let cooldown_ms = int_in("breakerCooldownMs", raw.breaker_cooldown_ms, 1.0, MAX_MS)?
            .unwrap_or(DEFAULT_BREAKER_COOLDOWN_MS);
        let threshold_bytes = int_in(
            "compressThresholdBytes",
            raw.compress_threshold_bytes,
            0.0,
            1e12,
        )?
        .map(|v| v as usize)
        .unwrap_or(DEFAULT_COMPRESS_THRESHOLD);
        let compression = match raw.compression.as_deref().unwrap_or(DEFAULT_COMPRESSION) {
            "none" => Compression::None,
            "lz4" => Compression::Lz4 {
                threshold: threshold_bytes,
            },
            other => {
                return Err(Error::invalid_option(
                    "compression",
                    format!("must be 'none' or 'lz4', got {other:?}"),
                ))
            }
        };
        let key_prefix = raw
            .key_prefix
            .unwrap_or_else(|| DEFAULT_KEY_PREFIX.to_string());
        if key_prefix.len() > MAX_KEY_BYTES / 2 {
            return Err(Error::invalid_option(
                "keyPrefix",
                format!(
                    "is too long ({} bytes, at most {})",
                    key_prefix.len(),
                    MAX_KEY_BYTES / 2
                ),
            ));
        }
        Ok(L2Config {
            url,
            key_prefix,
            ttl_seconds,
            ttl_jitter_seconds,
            timeout: Duration::from_millis(timeout_ms),
            connect_timeout: Duration::from_millis(connect_ms),
            breaker: BreakerConfig {
                failure_threshold: threshold,
                cooldown: Duration::from_millis(cooldown_ms),
            },
            compression,
            seeds,
            cluster,
        })
    }
}

/// Checks the URL (each host of it) and returns one URL per host.
fn check_url(url: &str) -> Result<Vec<String>> {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    if !matches!(scheme.as_deref(), Some("redis") | Some("rediss")) {
        return Err(Error::invalid_option(
            "url",
            format!(
                "must be a redis:// or rediss:// URL, got {}",
                seeds::redact(url)
            ),
        ));
    }
    let list = seeds::split(url).ok_or_else(|| {
        Error::invalid_option(
            "url",
            format!("has an empty host in its list: {}", seeds::redact(url)),
        )
    })?;
    for seed in &list {
        if let Err(e) = redis::Client::open(seed.as_str()) {
            // The driver's message can quote the URL: describe the failure by kind only.
            return Err(Error::invalid_option(
                "url",
                format!(
                    "is not a valid Redis URL ({}): {:?}",
                    seeds::redact(url),
                    e.kind()
                ),
            ));
        }
    }
    Ok(list)
}

/// A cluster has database 0 only.
fn check_cluster_db(list: &[String]) -> Result<()> {
    for seed in list {
        let db = redis::Client::open(seed.as_str())
            .map(|c| c.get_connection_info().redis_settings().db())
            .unwrap_or(0);
        if db != 0 {
            return Err(Error::invalid_option(
                "url",
                format!("selects database {db}, but a Redis Cluster has database 0 only"),
            ));
        }
    }
    Ok(())
}

/// An optional integer option within `[min, max]`.
fn int_in(name: &str, v: Option<f64>, min: f64, max: f64) -> Result<Option<u64>> {
    match v {
        None => Ok(None),
        Some(x) if x.is_finite() && x.fract() == 0.0 && x >= min && x <= max => Ok(Some(x as u64)),
        Some(x) => Err(Error::invalid_option(
            name,
            format!("must be an integer from {min} to {max}, got {x}"),
        )),
    }
}

/// Worker threads of the tokio runtime that runs the tier's I/O, for `cores` available cores:
/// [`crate::background::beside_event_loop`] (the event loop does most of a call's work; see
/// `src/js/runtime.rs`). `None` when `TOKIO_WORKER_THREADS` (`env`) holds a valid count: tokio
/// reads it itself.
pub fn io_worker_threads(cores: usize, env: Option<&str>) -> Option<usize> {
    if env.is_some_and(|v| v.trim().parse::<usize>().is_ok_and(|n| n > 0)) {
        return None;
    }
    Some(crate::background::beside_event_loop(cores))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;

    #[test]
    fn defaults() {
        let c = L2Config::new("redis://127.0.0.1:6390").unwrap();
        assert_eq!(c.key_prefix, "agent-core:conv:");
        assert_eq!(c.ttl_seconds, 3600);
        assert_eq!(c.ttl_jitter_seconds, 0);
        assert_eq!(c.timeout, Duration::from_millis(50));
        assert_eq!(c.breaker.failure_threshold, 5);
        assert_eq!(c.compression, Compression::Lz4 { threshold: 4096 });
    }

    #[test]
    fn bad_options_name_the_option() {
        let bad = |raw: RawL2Options, name: &str| {
            let e = L2Config::from_raw(raw).unwrap_err();
            assert_eq!(e.code, Code::InvalidOption);
            assert!(e.message.contains(name), "{}", e.message);
        };
        let url = || Some("redis://127.0.0.1:1".to_string());
        bad(RawL2Options::default(), "url");
        bad(
            RawL2Options {
                url: Some("http://x".into()),
                ..Default::default()
            },
            "url",
        );
        bad(
            RawL2Options {
                url: url(),
                ttl_seconds: Some(0.0),
                ..Default::default()
            },
            "ttlSeconds",
        );
        bad(
            RawL2Options {
                url: url(),
                ttl_seconds: Some(1.5),
                ..Default::default()
            },
            "ttlSeconds",
        );
        bad(
            RawL2Options {
                url: url(),
                timeout_ms: Some(f64::NAN),
                ..Default::default()
            },
            "timeoutMs",
        );
        bad(
            RawL2Options {
                url: url(),
                ttl_jitter_seconds: Some(-1.0),
                ..Default::default()
            },
            "ttlJitterSeconds",
        );
        bad(
            RawL2Options {
                url: url(),
                breaker_failure_threshold: Some(0.0),
                ..Default::default()
            },
            "breakerFailureThreshold",
        );
        bad(
            RawL2Options {
                url: url(),
                compression: Some("gzip".into()),
                ..Default::default()
            },
            "compression",
        );
    }

    #[test]
    fn several_hosts_make_a_cluster() {
        let c = L2Config::new("redis://u:pw@127.0.0.1:7000,127.0.0.1:7001").unwrap();
        assert!(c.cluster);
        assert_eq!(
            c.seeds,
            vec!["redis://u:pw@127.0.0.1:7000", "redis://u:pw@127.0.0.1:7001"]
        );
        assert_eq!(
            c.redacted_url(),
            "redis://u:***@127.0.0.1:7000,127.0.0.1:7001"
        );
        assert!(!L2Config::new("redis://127.0.0.1:7000").unwrap().cluster);
        let one = L2Config::from_raw(RawL2Options {
            url: Some("redis://127.0.0.1:7000".into()),
            cluster: Some(true),
            ..Default::default()
        })
        .unwrap();
        assert!(one.cluster);
        for (url, cluster) in [
            ("redis://h:1,h:2", Some(false)),
            ("redis://h:1,h:2/2", None),
            ("redis://h:1,,h:2", None),
        ] {
            let e = L2Config::from_raw(RawL2Options {
                url: Some(url.into()),
                cluster,
                ..Default::default()
            })
            .unwrap_err();
            assert_eq!(e.code, Code::InvalidOption, "{url}");
        }
    }

    #[test]
    fn a_bad_url_is_never_quoted_with_its_password() {
        for url in [
            "http://u:hunter2@h/0",
            "redis://u:hunter2@h:notaport/0",
            "redis://u:hunter2@h/notadb",
        ] {
            let Err(e) = L2Config::new(url) else { continue };
            assert!(!e.message.contains("hunter2"), "{}", e.message);
        }
    }

    #[test]
    fn io_workers_are_half_the_cores_between_one_and_four_unless_tokio_is_told() {
        assert_eq!(io_worker_threads(1, None), Some(1));
        assert_eq!(io_worker_threads(2, None), Some(1));
        assert_eq!(io_worker_threads(4, None), Some(2));
        assert_eq!(io_worker_threads(6, None), Some(3));
        assert_eq!(io_worker_threads(64, None), Some(4));
        assert_eq!(io_worker_threads(2, Some("3")), None);
        // Values tokio would reject (it panics on 0 and on garbage) are ignored here too.
        assert_eq!(io_worker_threads(2, Some("0")), Some(1));
        assert_eq!(io_worker_threads(2, Some("many")), Some(1));
    }
}
