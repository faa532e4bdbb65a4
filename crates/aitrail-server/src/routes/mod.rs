//! Routes, one module per area, each with `fn router()`.

pub mod checkpoint;
pub mod consistency;
pub mod events;
pub mod holds;
pub mod query;
pub mod subjects;
pub mod system;

use crate::error::ApiError;

/// Runs blocking store work off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
}

/// Unix microseconds now.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
