//! Raw reports in any S3-compatible bucket (AWS, MinIO, ...).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream as S3Body;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use tokio_util::io::ReaderStream;

use super::{probe_key, validate_key, ByteStream, ObjectStore, StoreError, StoredObject};
use crate::config::S3Config;

/// Bodies are uploaded in parts of this size, so at most one part is held in memory.
const PART_SIZE: usize = 8 * 1024 * 1024;

/// An S3 bucket with path-style addressing, so S3-compatible servers work unchanged.
pub struct S3Store {
    client: Client,
    bucket: String,
}

fn backend(what: &str, err: impl std::error::Error) -> StoreError {
    StoreError::Backend(format!("s3 {what}: {}", DisplayErrorContext(err)))
}

impl S3Store {
    /// Builds a client from the configuration. Static credentials are used when given, else the
    /// standard AWS provider chain.
    pub async fn connect(config: &S3Config) -> Self {
        let timeouts = aws_sdk_s3::config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(3))
            .build();
        let mut builder = match (&config.access_key_id, &config.secret_access_key) {
            (Some(id), Some(secret)) => aws_sdk_s3::config::Builder::new()
                .behavior_version(BehaviorVersion::latest())
                .credentials_provider(Credentials::new(id, secret, None, None, "rampart-config")),
            _ => {
                let shared = aws_config::defaults(BehaviorVersion::latest())
                    .region(Region::new(config.region.clone()))
                    .load()
                    .await;
                aws_sdk_s3::config::Builder::from(&shared)
            }
        };
        builder = builder
            .region(Region::new(config.region.clone()))
            .force_path_style(true)
            .timeout_config(timeouts);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        Self {
            client: Client::from_conf(builder.build()),
            bucket: config.bucket.clone(),
        }
    }

    async fn put_small(&self, key: &str, bytes: Bytes) -> Result<u64, StoreError> {
        let size = bytes.len() as u64;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(S3Body::from(bytes))
            .send()
            .await
            .map_err(|e| backend("put", e))?;
        Ok(size)
    }

    /// Uploads `first` and the rest of `body` as a multipart upload, one part in memory at a time.
    async fn put_multipart(
        &self,
        key: &str,
        first: Bytes,
        body: &mut ByteStream,
    ) -> Result<u64, StoreError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| backend("create multipart upload", e))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| StoreError::Backend("s3 returned no upload id".into()))?
            .to_string();
        let result = self.upload_parts(key, &upload_id, first, body).await;
        match result {
            Ok((size, parts)) => {
                self.client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| backend("complete multipart upload", e))?;
                Ok(size)
            }
            Err(err) => {
                let _ = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .send()
                    .await;
                Err(err)
            }
        }
    }

    async fn upload_parts(
        &self,
        key: &str,
        upload_id: &str,
        first: Bytes,
        body: &mut ByteStream,
    ) -> Result<(u64, Vec<CompletedPart>), StoreError> {
        let mut parts = Vec::new();
        let mut size = 0u64;
        let mut next = Some(first);
        while let Some(part) = next.take() {
            let part_number = parts.len() as i32 + 1;
            size += part.len() as u64;
            let uploaded = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(part_number)
                .body(S3Body::from(part))
                .send()
                .await
                .map_err(|e| backend("upload part", e))?;
            parts.push(
                CompletedPart::builder()
                    .set_e_tag(uploaded.e_tag().map(str::to_string))
                    .part_number(part_number)
                    .build(),
            );
            let (chunk, _) = fill_part(body).await?;
            if !chunk.is_empty() {
                next = Some(chunk);
            }
        }
        Ok((size, parts))
    }
}

/// Reads up to one part from `body`; the flag says whether the body has ended.
async fn fill_part(body: &mut ByteStream) -> Result<(Bytes, bool), StoreError> {
    let mut buf = BytesMut::new();
    while buf.len() < PART_SIZE {
        match body.next().await {
            Some(chunk) => buf.extend_from_slice(&chunk.map_err(StoreError::Body)?),
            None => return Ok((buf.freeze(), true)),
        }
    }
    Ok((buf.freeze(), false))
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn put(&self, key: &str, mut body: ByteStream) -> Result<u64, StoreError> {
        validate_key(key)?;
        let (first, ended) = fill_part(&mut body).await?;
        if ended {
            self.put_small(key, first).await
        } else {
            self.put_multipart(key, first, &mut body).await
        }
    }

    async fn get(&self, key: &str) -> Result<Option<StoredObject>, StoreError> {
        validate_key(key)?;
        let output = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(output) => output,
            Err(err) => {
                let missing = err.as_service_error().is_some_and(|e| e.is_no_such_key());
                return if missing {
                    Ok(None)
                } else {
                    Err(backend("get", err))
                };
            }
        };
        let size = output.content_length().unwrap_or_default().max(0) as u64;
        let reader = output.body.into_async_read();
        Ok(Some(StoredObject {
            size,
            body: Box::pin(ReaderStream::with_capacity(reader, 64 * 1024)),
        }))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        validate_key(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| backend("delete", e))?;
        Ok(())
    }

    async fn check(&self) -> Result<(), StoreError> {
        let key = probe_key();
        self.put_small(&key, Bytes::from_static(b"ok")).await?;
        self.delete(&key).await
    }

    fn kind(&self) -> &'static str {
        "s3"
    }
}
