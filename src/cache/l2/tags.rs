//! Tags: `write(.., Tags::Replace(tags))` records the thread in each tag's set
//! (`<prefix>tag:{<tag>}`) and the tags in the thread's own set (`<prefix>{<id>}:tags`, in the
//! thread's slot, written by the same script as the value). `invalidate_tag` invalidates
//! every thread of a tag's set that still has the tag (checked in the thread's own set, in
//! the same script as the deletion), so a thread re-tagged or invalidated meanwhile is left
//! alone.
//!
//! A tag's set is never pruned (removing a member there could race with a concurrent write
//! re-adding it, in another slot); it expires with the longest TTL of the writes that joined
//! it, and members that no longer carry the tag cost one script call when the tag is
//! invalidated.

use futures_util::future::join_all;
use redis::Value;

use crate::cache::l2::scripts::TAG_ADD_SCRIPT;
use crate::cache::l2::tier::RedisL2;
use crate::error::Result;

impl RedisL2 {
    /// Adds `thread_id` to the set of each tag (concurrently: tags live in slots of their
    /// own). `false` unless Redis confirmed every one.
    pub(super) async fn add_to_tags(
        &self,
        thread_id: &str,
        tags: &[String],
        ttl: u64,
    ) -> Result<bool> {
        let mut keys = Vec::with_capacity(tags.len());
        for t in tags {
            keys.push(self.keys.tag(t)?);
        }
        let done = join_all(keys.iter().map(|k| async move {
            let mut inv = TAG_ADD_SCRIPT.prepare_invoke();
            inv.key(k).arg(thread_id).arg(ttl);
            self.run_script(inv, self.cfg.timeout).await.is_ok()
        }))
        .await;
        Ok(done.into_iter().all(|ok| ok))
    }

    /// Invalidates every thread that has `tag` (each announced on the bus) and returns their
    /// ids. `None` when the tag's set could not be read (Redis failing); threads whose own
    /// invalidation failed are left out.
    pub async fn invalidate_tag(&self, tag: &str) -> Result<Option<Vec<String>>> {
        self.check_open()?;
        let key = self.keys.tag(tag)?;
        let members = match self.call(redis::cmd("SMEMBERS").arg(&key)).await {
            Ok(Value::Array(items)) => items,
            Ok(Value::Set(items)) => items,
            _ => return Ok(None),
        };
        let ids: Vec<String> = members
            .into_iter()
            .filter_map(|m| match m {
                Value::BulkString(b) => String::from_utf8(b).ok(),
                _ => None,
            })
            .filter(|id| self.keys.check(id).is_ok())
            .collect();
        let done = join_all(ids.iter().map(|id| self.invalidate(id, Some(tag)))).await;
        let mut out = Vec::new();
        for (id, r) in ids.into_iter().zip(done) {
            if r?.is_some() {
                out.push(id);
            }
        }
        Ok(Some(out))
    }
}
