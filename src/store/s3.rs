//! Raw reports in any S3-compatible bucket (AWS, MinIO, ...).

use std::collections::VecDeque;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream as S3Body;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio_util::io::ReaderStream;

use super::{
    validate_key, with_idle_timeout, ByteStream, ObjectInfo, ObjectList, ObjectStore, StoreError,
    StoredObject, PROBE_KEY,
};
use crate::config::S3Config;

/// Bodies are uploaded in parts of this size, so at most one part is held in memory.
const PART_SIZE: usize = 8 * 1024 * 1024;

/// An S3 bucket with path-style addressing, so S3-compatible servers work unchanged.
pub struct S3Store {
    client: Client,
    bucket: String,
    /// Longest pause between two chunks of a body being read back.
    read_idle: Duration,
}

/// Aborts a multipart upload that did not complete, also when the upload is abandoned
/// half-way (its future dropped, e.g. because the client went away): S3 would otherwise keep
/// its parts, unseen by any listing of objects, until something aborts it.
struct PendingUpload {
    client: Client,
    bucket: String,
    key: String,
    upload_id: Option<String>,
}

impl PendingUpload {
    async fn abort(mut self) {
        if let Some(upload_id) = self.upload_id.take() {
            abort_upload(&self.client, &self.bucket, &self.key, &upload_id).await;
        }
    }

    fn completed(mut self) {
        self.upload_id = None;
    }
}

impl Drop for PendingUpload {
    fn drop(&mut self) {
        let Some(upload_id) = self.upload_id.take() else {
            return;
        };
        let (client, bucket, key) = (self.client.clone(), self.bucket.clone(), self.key.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { abort_upload(&client, &bucket, &key, &upload_id).await });
        }
    }
}

async fn abort_upload(client: &Client, bucket: &str, key: &str, upload_id: &str) {
    let aborted = client
        .abort_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await;
    if let Err(err) = aborted {
        // The sweep aborts it later (`remove_incomplete`).
        tracing::warn!(%key, error = %DisplayErrorContext(err), "could not abort a multipart upload");
    }
}

fn chrono_of(time: Option<&aws_sdk_s3::primitives::DateTime>) -> DateTime<Utc> {
    time.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
        .unwrap_or_else(Utc::now)
}

fn backend(what: &str, err: impl std::error::Error) -> StoreError {
    StoreError::Backend(format!("s3 {what}: {}", DisplayErrorContext(err)))
}

impl S3Store {
    /// Builds a client from the configuration. Static credentials are used when given, else the
    /// standard AWS provider chain.
    pub async fn connect(config: &S3Config) -> Self {
        // Every call is bounded: connecting, waiting for an answer, each attempt and each
        // operation with its retries. A multipart upload is one operation per part, so a large
        // report is bounded part by part, not as a whole.
        let limits = config.timeouts;
        let timeouts = aws_sdk_s3::config::timeout::TimeoutConfig::builder()
            .connect_timeout(limits.connect)
            .read_timeout(limits.read)
            .operation_attempt_timeout(limits.attempt)
            .operation_timeout(limits.operation)
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
            read_idle: limits.read,
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
        let pending = PendingUpload {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: key.to_string(),
            upload_id: Some(upload_id.clone()),
        };
        let result = async {
            let (size, parts) = self.upload_parts(key, &upload_id, first, body).await?;
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
        .await;
        match result {
            Ok(size) => {
                pending.completed();
                Ok(size)
            }
            Err(err) => {
                pending.abort().await;
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
            body: with_idle_timeout(
                Box::pin(ReaderStream::with_capacity(reader, 64 * 1024)),
                self.read_idle,
            ),
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

    async fn list(&self, prefix: &str) -> Result<ObjectList, StoreError> {
        let pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        Ok(Box::pin(futures::stream::unfold(
            Some((pages, VecDeque::new())),
            |state| async move {
                let (mut pages, mut found) = state?;
                loop {
                    if let Some(info) = found.pop_front() {
                        return Some((Ok(info), Some((pages, found))));
                    }
                    match pages.next().await? {
                        Ok(page) => found.extend(page.contents().iter().filter_map(|o| {
                            Some(ObjectInfo {
                                key: o.key()?.to_string(),
                                size: o.size().unwrap_or_default().max(0) as u64,
                                modified: chrono_of(o.last_modified()),
                            })
                        })),
                        Err(err) => return Some((Err(backend("list", err)), None)),
                    }
                }
            },
        )))
    }

    async fn remove_incomplete(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut removed = 0;
        let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
        loop {
            let page = self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .set_key_marker(key_marker.take())
                .set_upload_id_marker(id_marker.take())
                .send()
                .await
                .map_err(|e| backend("list multipart uploads", e))?;
            for upload in page.uploads() {
                let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) else {
                    continue;
                };
                if chrono_of(upload.initiated()) < before {
                    abort_upload(&self.client, &self.bucket, key, id).await;
                    removed += 1;
                }
            }
            if !page.is_truncated().unwrap_or(false) {
                return Ok(removed);
            }
            key_marker = page.next_key_marker().map(str::to_string);
            id_marker = page.next_upload_id_marker().map(str::to_string);
            if key_marker.is_none() && id_marker.is_none() {
                return Ok(removed);
            }
        }
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.put_small(PROBE_KEY, Bytes::from_static(b"ok")).await?;
        self.delete(PROBE_KEY).await
    }

    fn kind(&self) -> &'static str {
        "s3"
    }
}
