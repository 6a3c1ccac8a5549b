//! `RedisTier#subscribe`: the invalidation-bus subscriber, delivering to JS through a
//! ThreadsafeFunction that is WEAK (unref'd): it never keeps Node alive, so a process using
//! a cache exits on its own, and the subscriber ends with `close()` (or when the tier is
//! garbage-collected).

use napi::bindgen_prelude::*;
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi_derive::napi;

use crate::cache::l2::BusEvent;
use crate::js::error::to_napi;
use crate::js::redis_tier::RedisTier;

/// One event of the invalidation bus ({@link RedisTier.subscribe}).
#[napi(object)]
pub struct RedisBusEvent {
    /// `'changed'`: another instance changed `key`, whose version is now `version`;
    /// `'resync'`: the subscriber re-subscribed after losing its connection (or subscribed for
    /// the first time after failed attempts) and may have missed messages: drop everything
    /// held; `'subscribed'`: the first subscription is in place at the first attempt: what
    /// was read or written before it may have missed a change, unless `ordered`.
    #[napi(ts_type = "'changed' | 'resync' | 'subscribed'")]
    pub kind: String,
    pub key: Option<String>,
    pub version: Option<f64>,
    /// With `'subscribed'`: the `SUBSCRIBE` went ahead of every command this tier sent (one
    /// RESP3 connection on a single server, armed before it opened), so nothing read or
    /// written through the tier before the event missed a change.
    pub ordered: Option<bool>,
}

fn to_js(e: BusEvent) -> RedisBusEvent {
    match e {
        BusEvent::Changed { key, version } => RedisBusEvent {
            kind: "changed".to_string(),
            key: Some(key),
            version: Some(version as f64),
            ordered: None,
        },
        BusEvent::Resync => signal("resync", None),
        BusEvent::Subscribed { ordered } => signal("subscribed", Some(ordered)),
    }
}

/// An event about the subscription itself (no key, no version).
fn signal(kind: &str, ordered: Option<bool>) -> RedisBusEvent {
    RedisBusEvent {
        kind: kind.to_string(),
        key: None,
        version: None,
        ordered,
    }
}

#[napi]
impl RedisTier {
    /// Starts this tier's invalidation-bus subscriber (on a single server it subscribes on the
    /// tier's connection, opening it now; reconnects by itself): `onEvents` receives other
    /// instances' changes in batches, in order, a `'subscribed'` event once the first
    /// subscription is in place, and a `'resync'` event after every re-subscription (and
    /// instead of `'subscribed'` when the first one needed retries). It must not throw. Never
    /// keeps the process alive; ends with `close()`. Once per tier.
    #[napi(ts_args_type = "onEvents: (events: RedisBusEvent[]) => void")]
    pub fn subscribe(&self, env: Env, on_events: Function<Vec<RedisBusEvent>, ()>) -> Result<()> {
        let tsfn = on_events
            .build_threadsafe_function::<Vec<RedisBusEvent>>()
            .weak::<true>()
            .callee_handled::<false>()
            .build()?;
        let sink = Box::new(move |events: Vec<BusEvent>| {
            let js = events.into_iter().map(to_js).collect();
            tsfn.call(js, ThreadsafeFunctionCallMode::NonBlocking) != Status::Closing
        });
        let fut = self
            .inner
            .bus_subscriber(sink)
            .map_err(|e| to_napi(&env, &e))?;
        napi::bindgen_prelude::spawn(fut);
        Ok(())
    }

    /// Whether the bus subscriber is subscribed right now.
    #[napi(getter)]
    pub fn bus_connected(&self) -> bool {
        self.inner.bus_connected()
    }
}

impl Drop for RedisTier {
    fn drop(&mut self) {
        // A tier collected without close(): its subscriber must not run on forever.
        self.inner.stop_bus();
    }
}
