//! Reads: a thread's value and its version together, in one round trip (`MGET value ver`:
//! both keys share the thread's slot), so that the cache knows which version a copy is.

use redis::Value;

use crate::cache::l2::envelope::{self, Decoded};
use crate::cache::l2::stats::Stats;
use crate::cache::l2::tier::{Failure, RedisL2};
use crate::error::Result;

/// What Redis holds for a thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// The payload; `None` when absent (or foreign / corrupt: counted).
    pub payload: Option<String>,
    /// The thread's version; `None` when it has none (never written, or expired).
    pub version: Option<u64>,
}

/// A version as stored (a decimal string); anything else is no version.
pub(crate) fn parse_version(v: &Value) -> Option<u64> {
    match v {
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        Value::Int(n) => u64::try_from(*n).ok(),
        _ => None,
    }
}

impl RedisL2 {
    /// Turns a stored value into a payload, counting hits / corrupt values.
    fn decode_counted(&self, raw: Vec<u8>) -> Option<String> {
        Stats::add(&self.stats.bytes_read, raw.len() as u64);
        match envelope::decode(raw) {
            Decoded::Value(s) => {
                Stats::add(&self.stats.hits, 1);
                Some(s)
            }
            Decoded::Corrupt(_) => {
                Stats::add(&self.stats.corrupt, 1);
                Stats::add(&self.stats.misses, 1);
                None
            }
        }
    }

    pub(crate) fn reply_value(&self, v: Value) -> Option<String> {
        match v {
            Value::BulkString(b) => self.decode_counted(b),
            Value::Nil => {
                Stats::add(&self.stats.misses, 1);
                None
            }
            _ => {
                Stats::add(&self.stats.corrupt, 1);
                Stats::add(&self.stats.misses, 1);
                None
            }
        }
    }

    /// The payload and version of `key`; `None` when Redis could not be asked or did not
    /// answer in time (a miss all the same: counted).
    pub async fn read(&self, key: &str) -> Result<Option<Versioned>> {
        Ok(self.read_many(&[key]).await?.pop().flatten())
    }

    /// [`RedisL2::read`] for many keys, in order, in ONE command (`MGET v1 ver1 v2 ver2 ...`;
    /// on a cluster the client splits it by slot, one round trip per node).
    pub async fn read_many<S: AsRef<str>>(&self, keys: &[S]) -> Result<Vec<Option<Versioned>>> {
        self.check_open()?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("MGET");
        for k in keys {
            let t = self.keys.thread(k.as_ref())?;
            cmd.arg(t.value).arg(t.version);
        }
        let n = keys.len();
        Stats::add(&self.stats.gets, n as u64);
        match self.call(&cmd).await {
            Ok(Value::Array(items)) if items.len() == 2 * n => {
                let mut out = Vec::with_capacity(n);
                let mut it = items.into_iter();
                while let (Some(value), Some(version)) = (it.next(), it.next()) {
                    out.push(Some(Versioned {
                        version: parse_version(&version),
                        payload: self.reply_value(value),
                    }));
                }
                Ok(out)
            }
            Ok(_) | Err(Failure::Reply) => {
                Stats::add(&self.stats.corrupt, n as u64);
                Stats::add(&self.stats.misses, n as u64);
                Ok(vec![None; n])
            }
            Err(_) => {
                Stats::add(&self.stats.misses, n as u64);
                Ok(vec![None; n])
            }
        }
    }

    /// The payload stored under `key`, or `None` (absent, foreign, corrupt, Redis failing).
    pub async fn get(&self, key: &str) -> Result<Option<String>> {
        Ok(self.read(key).await?.and_then(|r| r.payload))
    }

    /// The payloads of `keys`, in order, in ONE round trip (see [`RedisL2::read_many`]).
    pub async fn mget<S: AsRef<str>>(&self, keys: &[S]) -> Result<Vec<Option<String>>> {
        Ok(self
            .read_many(keys)
            .await?
            .into_iter()
            .map(|r| r.and_then(|r| r.payload))
            .collect())
    }
}
