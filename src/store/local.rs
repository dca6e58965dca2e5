//! Raw reports as files under the data directory.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio::fs;
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

use crate::private_fs;

use super::{
    validate_key, ByteStream, ObjectInfo, ObjectList, ObjectStore, StoreError, StoredObject,
    PROBE_KEY,
};

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

/// Removes an upload's temporary file unless it was moved into place, also when the upload
/// is abandoned half-way (its future dropped, e.g. because the client went away).
struct TmpFile(Option<PathBuf>);

impl Drop for TmpFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn modified_of(meta: &std::fs::Metadata) -> DateTime<Utc> {
    meta.modified()
        .map(DateTime::<Utc>::from)
        .unwrap_or_else(|_| Utc::now())
}

/// The directories still to read and the objects found but not yet handed out.
struct Walk {
    objects: PathBuf,
    prefix: String,
    dirs: Vec<PathBuf>,
    found: VecDeque<ObjectInfo>,
}

impl Walk {
    async fn next(&mut self) -> Result<Option<ObjectInfo>, StoreError> {
        loop {
            if let Some(info) = self.found.pop_front() {
                return Ok(Some(info));
            }
            let Some(dir) = self.dirs.pop() else {
                return Ok(None);
            };
            let mut entries = match fs::read_dir(&dir).await {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(backend(format!("cannot list {}", dir.display()), e)),
            };
            while let Some(entry) = entries
                .next_entry()
                .await
                .map_err(|e| backend(format!("cannot list {}", dir.display()), e))?
            {
                let Ok(meta) = entry.metadata().await else {
                    continue; // removed meanwhile
                };
                let path = entry.path();
                if meta.is_dir() {
                    self.dirs.push(path);
                    continue;
                }
                let Ok(relative) = path.strip_prefix(&self.objects) else {
                    continue;
                };
                let key = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                if key.starts_with(&self.prefix) {
                    self.found.push_back(ObjectInfo {
                        key,
                        size: meta.len(),
                        modified: modified_of(&meta),
                    });
                }
            }
        }
    }
}

#[async_trait]
impl ObjectStore for LocalStore {
    async fn put(&self, key: &str, mut body: ByteStream) -> Result<u64, StoreError> {
        let dest = self.path_of(key)?;
        let tmp = self.tmp.join(uuid::Uuid::new_v4().simple().to_string());
        let mut guard = TmpFile(Some(tmp.clone()));
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
            guard.0 = None;
            Ok(size)
        }
        .await;
        drop(guard);
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

    async fn list(&self, prefix: &str) -> Result<ObjectList, StoreError> {
        // Start at the deepest directory the prefix names whole.
        let start = match prefix.rsplit_once('/') {
            Some((dir, _)) => {
                validate_key(dir)?;
                self.objects.join(dir)
            }
            None => self.objects.clone(),
        };
        let walk = Walk {
            objects: self.objects.clone(),
            prefix: prefix.to_string(),
            dirs: vec![start],
            found: VecDeque::new(),
        };
        Ok(Box::pin(futures::stream::unfold(
            Some(walk),
            |walk| async move {
                let mut walk = walk?;
                match walk.next().await {
                    Ok(Some(info)) => Some((Ok(info), Some(walk))),
                    Ok(None) => None,
                    Err(err) => Some((Err(err), None)),
                }
            },
        )))
    }

    async fn remove_incomplete(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut removed = 0;
        let mut entries = fs::read_dir(&self.tmp)
            .await
            .map_err(|e| backend(format!("cannot list {}", self.tmp.display()), e))?;
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| backend(format!("cannot list {}", self.tmp.display()), e))?
        {
            let Ok(meta) = entry.metadata().await else {
                continue;
            };
            if meta.is_file()
                && modified_of(&meta) < before
                && fs::remove_file(entry.path()).await.is_ok()
            {
                removed += 1;
            }
        }
        Ok(removed)
    }

    async fn check(&self) -> Result<(), StoreError> {
        let key = PROBE_KEY;
        let body: ByteStream = Box::pin(futures::stream::once(async {
            Ok(bytes::Bytes::from_static(b"ok"))
        }));
        self.put(key, body).await?;
        self.delete(key).await
    }

    fn kind(&self) -> &'static str {
        "local"
    }
}
