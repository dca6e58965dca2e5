//! Raw reports as files under the data directory.

use std::io;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use futures::StreamExt;
use tokio::fs;
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

use crate::private_fs;

use super::{probe_key, validate_key, ByteStream, ObjectStore, StoreError, StoredObject};

/// Objects live in `<root>/objects/<key>`; uploads are written to `<root>/tmp/` first and
/// renamed into place, so a crash never leaves a partial object under a real key. Directories
/// are `0700` and files `0600` ([`private_fs`]): raw reports hold what scanners found.
pub struct LocalStore {
    objects: PathBuf,
    tmp: PathBuf,
}

impl LocalStore {
    /// Opens (creating if needed) a store rooted at `root`.
    ///
    /// # Errors
    /// When the directories cannot be created.
    pub async fn open(root: &Path) -> Result<Self, StoreError> {
        let objects = root.join("objects");
        let tmp = root.join("tmp");
        for dir in [root, &objects, &tmp] {
            private_fs::create_dir(dir)
                .await
                .map_err(|e| backend(format!("cannot create {}", dir.display()), e))?;
        }
        Ok(Self { objects, tmp })
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, StoreError> {
        validate_key(key)?;
        Ok(self.objects.join(key))
    }
}

fn backend(what: String, err: io::Error) -> StoreError {
    StoreError::Backend(format!("{what}: {err}"))
}

#[async_trait]
impl ObjectStore for LocalStore {
    async fn put(&self, key: &str, mut body: ByteStream) -> Result<u64, StoreError> {
        let dest = self.path_of(key)?;
        let tmp = self.tmp.join(uuid::Uuid::new_v4().simple().to_string());
        let mut file = private_fs::create_file(&tmp)
            .await
            .map_err(|e| backend(format!("cannot create {}", tmp.display()), e))?;
        let written = async {
            let mut size = 0u64;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(StoreError::Body)?;
                file.write_all(&chunk)
                    .await
                    .map_err(|e| backend("write failed".into(), e))?;
                size += chunk.len() as u64;
            }
            file.sync_all()
                .await
                .map_err(|e| backend("sync failed".into(), e))?;
            if let Some(parent) = dest.parent() {
                private_fs::create_dir(parent)
                    .await
                    .map_err(|e| backend(format!("cannot create {}", parent.display()), e))?;
            }
            fs::rename(&tmp, &dest)
                .await
                .map_err(|e| backend(format!("cannot move into {}", dest.display()), e))?;
            Ok(size)
        }
        .await;
        if written.is_err() {
            let _ = fs::remove_file(&tmp).await;
        }
        written
    }

    async fn get(&self, key: &str) -> Result<Option<StoredObject>, StoreError> {
        let path = self.path_of(key)?;
        let file = match fs::File::open(&path).await {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(backend(format!("cannot open {}", path.display()), e)),
        };
        let size = file
            .metadata()
            .await
            .map_err(|e| backend("stat failed".into(), e))?
            .len();
        Ok(Some(StoredObject {
            size,
            body: Box::pin(ReaderStream::with_capacity(file, 64 * 1024)),
        }))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path_of(key)?;
        match fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(backend(format!("cannot delete {}", path.display()), e)),
        }
    }

    async fn check(&self) -> Result<(), StoreError> {
        let key = probe_key();
        let body: ByteStream = Box::pin(futures::stream::once(async {
            Ok(bytes::Bytes::from_static(b"ok"))
        }));
        self.put(&key, body).await?;
        self.delete(&key).await
    }

    fn kind(&self) -> &'static str {
        "local"
    }
}
