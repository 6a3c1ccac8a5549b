//! `serialize`, `serializeAsync`, `shutdownSerializationPool`.

/// Kept for drop-in compatibility with the TypeScript SerializationHelper, whose
/// serializeAsync ran on a worker pool. This addon has no pool to shut down: the call
/// resolves at once, may be made any number of times, and serialization keeps working after.
#[napi_derive::napi]
pub async fn shutdown_serialization_pool() {}
