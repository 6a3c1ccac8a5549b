//! The binding layer: the only place `#[napi]` appears. Each file converts JS arguments
//! into core types, calls one core function, and maps errors through [`error`].

pub mod error;
mod metrics;
pub mod raw;
mod redis_bus;
mod redis_coherence;
mod redis_lock;
mod redis_tier;
mod runtime;
mod serialize;
mod settle;
pub mod strings;
mod tokens;

/// The addon's one load hook (napi-rs allows a single `module_exports` function): work that
/// must start when Node loads the addon.
#[napi_derive::napi(module_exports)]
pub fn on_load(_exports: napi::bindgen_prelude::Object) -> napi::Result<()> {
    runtime::install();
    tokens::on_load();
    Ok(())
}
