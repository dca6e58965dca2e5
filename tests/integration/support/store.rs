//! An object store that lets a test step in before some calls (to pause, fail or count them)
//! and passes every call through to the real store otherwise.

use std::sync::Arc;

use async_trait::async_trait;
use rampart::store::{ByteStream, ObjectList, ObjectStore, StoreError, StoredObject};

/// What a test does before a store call; by default nothing.
#[async_trait]
pub trait Interpose: Send + Sync + 'static {
    /// Before a read; an error fails the read.
    async fn before_get(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Before a health check.
    async fn before_check(&self) {}
}

/// `inner`, with `hooks` stepping in.
pub struct Interposed<I> {
    pub inner: Arc<dyn ObjectStore>,
    pub hooks: I,
}

impl<I: Interpose> Interposed<I> {
    pub fn wrap(inner: Arc<dyn ObjectStore>, hooks: I) -> Arc<dyn ObjectStore> {
        Arc::new(Self { inner, hooks })
    }
}

#[async_trait]
impl<I: Interpose> ObjectStore for Interposed<I> {
    async fn put(&self, key: &str, body: ByteStream) -> Result<u64, StoreError> {
        self.inner.put(key, body).await
    }

    async fn get(&self, key: &str) -> Result<Option<StoredObject>, StoreError> {
        self.hooks.before_get().await?;
        self.inner.get(key).await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }

    async fn list(&self, prefix: &str) -> Result<ObjectList, StoreError> {
        self.inner.list(prefix).await
    }

    async fn remove_incomplete(
        &self,
        before: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, StoreError> {
        self.inner.remove_incomplete(before).await
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.hooks.before_check().await;
        self.inner.check().await
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}
