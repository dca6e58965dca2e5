//! Object storage for raw reports: a local-disk store (embedded default) or S3.
//!
//! Bodies move as streams of chunks in both directions, so a report of any size costs a
//! bounded amount of memory.

mod local;
mod s3;

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};

pub use local::LocalStore;
pub use s3::S3Store;

/// A body in flight: chunks of bytes, or the I/O error that cut it short.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid object key {0:?}")]
    InvalidKey(String),
    #[error("reading the body failed: {0}")]
    Body(#[source] io::Error),
    #[error("{0}")]
    Backend(String),
}

/// A stored object being read back.
pub struct StoredObject {
    /// Size in bytes, as stored.
    pub size: u64,
    pub body: ByteStream,
}

/// What `put_hashed` learned while the body streamed through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PutReceipt {
    pub size: u64,
    /// Lowercase hex SHA-256 of the stored bytes.
    pub sha256: String,
}

/// One object as a listing names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    /// When the object was last written (to the second on S3).
    pub modified: DateTime<Utc>,
}

/// A listing in progress, page by page, so a bucket of any size costs bounded memory.
pub type ObjectList = Pin<Box<dyn Stream<Item = Result<ObjectInfo, StoreError>> + Send>>;

/// A place to keep raw reports by key. Keys are relative paths of `[A-Za-z0-9._-]` segments.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Stores `body` under `key`, replacing any object there; returns the stored size. The
    /// object becomes visible only once the whole body has been written.
    async fn put(&self, key: &str, body: ByteStream) -> Result<u64, StoreError>;

    /// Reads an object back as a stream; `None` when there is none under `key`.
    async fn get(&self, key: &str) -> Result<Option<StoredObject>, StoreError>;

    /// Removes an object; removing a missing one is not an error.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// Every object whose key starts with `prefix`, in no particular order.
    async fn list(&self, prefix: &str) -> Result<ObjectList, StoreError>;

    /// Removes what interrupted uploads begun before `before` left behind (temporary files,
    /// unfinished multipart uploads); returns how many were removed.
    async fn remove_incomplete(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Proves the store is reachable and writable: writes and removes the one probe object
    /// ([`PROBE_KEY`]), so a check cut short leaves at most that object behind, never one per
    /// check.
    async fn check(&self) -> Result<(), StoreError>;

    /// `local` or `s3`, for health reports and logs.
    fn kind(&self) -> &'static str;
}

/// Stores `body` while computing its SHA-256 and size on the way through.
///
/// # Errors
/// Whatever the store or the body stream reports.
pub async fn put_hashed(
    store: &dyn ObjectStore,
    key: &str,
    body: ByteStream,
) -> Result<PutReceipt, StoreError> {
    let hasher = Arc::new(Mutex::new(Sha256::new()));
    let tap = hasher.clone();
    let hashed = body.inspect(move |chunk| {
        if let Ok(bytes) = chunk {
            tap.lock().expect("hasher lock").update(bytes);
        }
    });
    let size = store.put(key, Box::pin(hashed)).await?;
    let digest = hasher.lock().expect("hasher lock").clone().finalize();
    Ok(PutReceipt {
        size,
        sha256: hex::encode(digest),
    })
}

/// Opens a stored object as a blocking reader, for synchronous consumers (parsers) running on
/// a blocking thread of the runtime `handle`.
///
/// # Errors
/// When the store fails or there is no object under `key`.
pub fn blocking_reader(
    store: &dyn ObjectStore,
    key: &str,
    handle: &tokio::runtime::Handle,
) -> io::Result<Box<dyn io::Read + Send>> {
    let object = handle
        .block_on(store.get(key))
        .map_err(io::Error::other)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "stored report is missing"))?;
    Ok(Box::new(tokio_util::io::SyncIoBridge::new_with_handle(
        tokio_util::io::StreamReader::new(object.body),
        handle.clone(),
    )))
}

/// Rejects keys that could escape the store's root or that S3 and file systems treat differently.
fn validate_key(key: &str) -> Result<(), StoreError> {
    let ok_segment = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    };
    if key.len() <= 512 && key.split('/').all(ok_segment) {
        Ok(())
    } else {
        Err(StoreError::InvalidKey(key.to_string()))
    }
}

/// The key `check` writes and removes; the same every time, in every process.
pub const PROBE_KEY: &str = ".probe/health";

/// Fails a body read back when no chunk arrives for `idle`: a hung store then surfaces as an
/// I/O error (`TimedOut`) to whoever reads, e.g. a worker's parser, instead of blocking it.
pub fn with_idle_timeout(body: ByteStream, idle: Duration) -> ByteStream {
    Box::pin(futures::stream::unfold(
        Some(body),
        move |body| async move {
            let mut body = body?;
            match tokio::time::timeout(idle, body.next()).await {
                Ok(Some(chunk)) => Some((chunk, Some(body))),
                Ok(None) => None,
                Err(_) => Some((
                    Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the object store sent nothing for {} ms", idle.as_millis()),
                    )),
                    None,
                )),
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape() {
        assert!(validate_key("reports/2026/abc.json").is_ok());
        assert!(validate_key(".probe/x").is_ok());
        for bad in [
            "", "/abs", "a/../b", "a//b", "a/./b", "sp ace", "a\\b", "..",
        ] {
            assert!(validate_key(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[tokio::test]
    async fn put_hashed_reports_size_and_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).await.unwrap();
        let body: ByteStream = Box::pin(futures::stream::iter(vec![
            Ok(Bytes::from_static(b"hello ")),
            Ok(Bytes::from_static(b"world")),
        ]));
        let receipt = put_hashed(&store, "a/b.txt", body).await.unwrap();
        assert_eq!(receipt.size, 11);
        assert_eq!(
            receipt.sha256,
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
    }
}
