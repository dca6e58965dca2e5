//! The object store: a 50 MB body streamed in and out, with memory staying flat.

use bytes::Bytes;
use futures::StreamExt;
use rampart::store::{put_hashed, ByteStream, LocalStore, ObjectStore, S3Store};
use sha2::{Digest, Sha256};

use crate::support::{create_bucket, TestEnv};

const CHUNK: usize = 64 * 1024;
const CHUNKS: usize = 800; // 50 MiB

/// Deterministic, incompressible-looking content, produced lazily chunk by chunk.
fn chunk(index: usize) -> Bytes {
    let mut state = (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::with_capacity(CHUNK);
    while out.len() < CHUNK {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    Bytes::from(out)
}

fn body() -> ByteStream {
    Box::pin(futures::stream::iter((0..CHUNKS).map(|i| Ok(chunk(i)))))
}

fn expected_sha256() -> String {
    let mut hasher = Sha256::new();
    for i in 0..CHUNKS {
        hasher.update(chunk(i));
    }
    hex::encode(hasher.finalize())
}

fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

async fn store_for(env: &TestEnv, dir: &std::path::Path) -> Box<dyn ObjectStore> {
    match &env.s3 {
        Some(s3) => {
            let bucket = create_bucket(s3).await;
            let mut config = rampart::Config::with_data_dir(dir);
            config.s3_bucket = Some(bucket);
            config.s3_endpoint = Some(s3.endpoint.clone());
            config.s3_access_key_id = Some(s3.access_key.clone());
            config.s3_secret_access_key = Some(s3.secret_key.clone());
            Box::new(S3Store::connect(&config.s3().unwrap()).await)
        }
        None => Box::new(LocalStore::open(dir).await.unwrap()),
    }
}

/// Runs in a child process (so other tests' allocations do not blur the measurement): round
/// trip and print how far resident memory rose above where it started.
#[tokio::test]
#[ignore = "run by fifty_megabytes_round_trip_with_flat_memory in its own process"]
async fn round_trip_child() {
    let env = TestEnv::from_env();
    let dir = tempfile::tempdir().unwrap();
    let store = store_for(&env, dir.path()).await;
    store.check().await.expect("store usable");
    let expected = expected_sha256();

    // Reset the peak so it only covers the transfer.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = proc_status_kib("VmRSS:").unwrap();

    let receipt = put_hashed(store.as_ref(), "reports/big.bin", body())
        .await
        .expect("put");
    assert_eq!(receipt.size, (CHUNK * CHUNKS) as u64);
    assert_eq!(receipt.sha256, expected);

    let object = store.get("reports/big.bin").await.unwrap().expect("stored");
    assert_eq!(object.size, receipt.size);
    let mut hasher = Sha256::new();
    let mut read = 0u64;
    let mut stream = object.body;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("read");
        read += chunk.len() as u64;
        hasher.update(&chunk);
    }
    assert_eq!(read, receipt.size);
    assert_eq!(hex::encode(hasher.finalize()), expected);

    store.delete("reports/big.bin").await.unwrap();
    assert!(store.get("reports/big.bin").await.unwrap().is_none());
    store
        .delete("reports/big.bin")
        .await
        .expect("deleting twice is fine");

    let peak = proc_status_kib("VmHWM:").unwrap();
    println!("PEAK_GROWTH_KIB={}", peak.saturating_sub(before));
}

#[test]
fn fifty_megabytes_round_trip_with_flat_memory() {
    let stdout = crate::support::run_in_own_process("store::round_trip_child");
    let growth_kib: u64 = stdout
        .lines()
        .find_map(|l| l.split_once("PEAK_GROWTH_KIB=").map(|(_, n)| n))
        .unwrap_or_else(|| panic!("child reported no peak:\n{stdout}"))
        .trim()
        .parse()
        .unwrap();
    // 50 MiB went through; buffering it whole would raise the peak by at least that much.
    assert!(
        growth_kib < 32 * 1024,
        "resident memory rose by {growth_kib} KiB for a 50 MiB body"
    );
}

#[tokio::test]
async fn invalid_keys_and_missing_objects() {
    let env = TestEnv::from_env();
    let dir = tempfile::tempdir().unwrap();
    let store = store_for(&env, dir.path()).await;
    assert!(store.get("no/such/object").await.unwrap().is_none());
    let escape = store
        .put("../outside", Box::pin(futures::stream::empty()))
        .await;
    assert!(escape.is_err());
    let empty = put_hashed(store.as_ref(), "empty", Box::pin(futures::stream::empty()))
        .await
        .unwrap();
    assert_eq!(empty.size, 0);
    assert_eq!(
        empty.sha256,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

// --- bounded waits: S3 hung, not down ---------------------------------------------------------

mod hung {
    use std::io::Read;
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use rampart::store::{blocking_reader, ByteStream, ObjectStore, S3Store};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::watch;
    use tokio::task::JoinSet;

    use crate::support::proxy::{socket_of, through};
    use crate::support::{create_bucket, Auth, TestApp, TestConfig, TestEnv};

    /// Only turns a hang into a failure with a message; every call must end far sooner, at
    /// the short timeouts configured below.
    const HANG_GUARD: Duration = Duration::from_secs(120);

    async fn finishes<T>(what: &str, call: impl std::future::Future<Output = T>) -> T {
        tokio::time::timeout(HANG_GUARD, call)
            .await
            .unwrap_or_else(|_| panic!("{what} waited without bound on a hung S3"))
    }

    /// A loopback TCP proxy in front of an S3 server (or of nothing) that the test can switch
    /// to "hang": connections stay open, and nothing more goes through in either direction.
    pub struct HangingProxy {
        pub addr: SocketAddr,
        hung: watch::Sender<bool>,
        task: tokio::task::JoinHandle<()>,
    }

    impl HangingProxy {
        /// Forwards to `upstream`; with none, every connection hangs from the start.
        pub async fn start(upstream: Option<SocketAddr>) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            let (hung, watching) = watch::channel(upstream.is_none());
            let task = tokio::spawn(async move {
                let mut connections = JoinSet::new();
                while let Ok((inbound, _)) = listener.accept().await {
                    let watching = watching.clone();
                    connections.spawn(async move {
                        let Some(upstream) = upstream else {
                            let _held = inbound;
                            return std::future::pending::<()>().await;
                        };
                        let Ok(outbound) = TcpStream::connect(upstream).await else {
                            return;
                        };
                        let (in_read, in_write) = inbound.into_split();
                        let (out_read, out_write) = outbound.into_split();
                        tokio::join!(
                            pump(in_read, out_write, watching.clone()),
                            pump(out_read, in_write, watching),
                        );
                    });
                }
            });
            Self { addr, hung, task }
        }

        pub fn hang(&self) {
            self.hung.send_replace(true);
        }
    }

    impl Drop for HangingProxy {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    async fn pump(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        mut hung: watch::Receiver<bool>,
    ) {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            if *hung.borrow_and_update() {
                // Hung: the connection stays open and silent.
                let _held = (from, to);
                return std::future::pending::<()>().await;
            }
            let read = tokio::select! {
                read = from.read(&mut buf) => read,
                _ = hung.changed() => continue,
            };
            match read {
                Ok(0) | Err(_) => {
                    let _ = to.shutdown().await;
                    return;
                }
                Ok(n) => {
                    if to.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// A server that answers any request with the headers of a 24 MiB object, sends its first
    /// 64 KiB and then nothing more, holding the connection open.
    async fn stalling_body_server() -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((mut socket, _)) = listener.accept().await {
                connections.spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nETag: \"stalled\"\r\n\r\n",
                        24 << 20
                    );
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(&vec![b'x'; 64 * 1024]).await;
                    std::future::pending::<()>().await
                });
            }
        });
        (addr, task)
    }

    /// An S3 store at `endpoint` with timeouts short enough for a test.
    async fn store_at(endpoint: &str, bucket: &str, keys: (&str, &str)) -> S3Store {
        let mut config = rampart::Config::with_data_dir("/nonexistent");
        config.s3_bucket = Some(bucket.into());
        config.s3_endpoint = Some(endpoint.into());
        config.s3_access_key_id = Some(keys.0.into());
        config.s3_secret_access_key = Some(keys.1.into());
        config.s3_connect_timeout_ms = 500;
        config.s3_read_timeout_ms = 500;
        config.s3_attempt_timeout_ms = 1_000;
        config.s3_operation_timeout_ms = 2_000;
        S3Store::connect(&config.s3().expect("s3 configured")).await
    }

    fn bytes_body(len: usize) -> ByteStream {
        let chunks = (0..len.div_ceil(64 * 1024)).map(move |i| {
            let n = (len - i * 64 * 1024).min(64 * 1024);
            Ok(Bytes::from(vec![b'r'; n]))
        });
        Box::pin(futures::stream::iter(chunks.collect::<Vec<_>>()))
    }

    /// A proxy in front of the run's S3 server, with a fresh bucket there; or, on the embedded
    /// run, in front of nothing (hung from the start).
    async fn hung_s3(env: &TestEnv) -> (HangingProxy, S3Store, bool) {
        match &env.s3 {
            Some(s3) => {
                let bucket = create_bucket(s3).await;
                let proxy = HangingProxy::start(Some(socket_of(&s3.endpoint))).await;
                let endpoint = through(&s3.endpoint, proxy.addr);
                let store = store_at(&endpoint, &bucket, (&s3.access_key, &s3.secret_key)).await;
                (proxy, store, true)
            }
            None => {
                let proxy = HangingProxy::start(None).await;
                let store = store_at(&format!("http://{}", proxy.addr), "hung", ("k", "s")).await;
                (proxy, store, false)
            }
        }
    }

    #[tokio::test]
    async fn every_call_to_a_hung_s3_fails_within_its_bounds() {
        let env = TestEnv::from_env();
        let (proxy, store, real) = hung_s3(&env).await;
        if real {
            // The proxy forwards until it is told to hang.
            store
                .put("reports/before", bytes_body(1024))
                .await
                .expect("put through the proxy");
        }
        proxy.hang();

        let small = finishes("put", store.put("reports/small", bytes_body(1024))).await;
        assert!(small.is_err(), "a put to a hung S3 succeeded");
        // Larger than one part: a multipart upload, each part bounded.
        let large = finishes(
            "multipart put",
            store.put("reports/large", bytes_body(9 << 20)),
        )
        .await;
        assert!(large.is_err(), "a multipart put to a hung S3 succeeded");
        let read = finishes("get", store.get("reports/before")).await;
        assert!(read.is_err(), "a get from a hung S3 succeeded");
        let deleted = finishes("delete", store.delete("reports/before")).await;
        assert!(deleted.is_err(), "a delete on a hung S3 succeeded");
        let checked = finishes("check", store.check()).await;
        assert!(checked.is_err(), "a check of a hung S3 succeeded");
        let listed = finishes("list", async {
            use futures::StreamExt;
            match store.list("reports/").await {
                Ok(mut listing) => listing.next().await.transpose().map(|_| ()),
                Err(err) => Err(err),
            }
        })
        .await;
        assert!(listed.is_err(), "listing a hung S3 succeeded");
    }

    /// A worker's parser reads the report through `blocking_reader`: when S3 stops sending
    /// half-way through the body, the read fails (and the attempt with it) instead of blocking
    /// the worker for good.
    #[tokio::test]
    async fn a_read_that_stops_half_way_fails_the_reader() {
        let env = TestEnv::from_env();
        let (store, proxy, _server) = match &env.s3 {
            Some(s3) => {
                let bucket = create_bucket(s3).await;
                let proxy = HangingProxy::start(Some(socket_of(&s3.endpoint))).await;
                let endpoint = through(&s3.endpoint, proxy.addr);
                let store = store_at(&endpoint, &bucket, (&s3.access_key, &s3.secret_key)).await;
                // Larger than any socket buffer, so most of it is still on its way at the hang.
                store
                    .put("reports/big", bytes_body(24 << 20))
                    .await
                    .expect("put through the proxy");
                (store, Some(proxy), None)
            }
            None => {
                let (addr, server) = stalling_body_server().await;
                let store = store_at(&format!("http://{addr}"), "stalls", ("k", "s")).await;
                (store, None, Some(server))
            }
        };
        let store: Arc<dyn ObjectStore> = Arc::new(store);
        let (first_read, read_once) = tokio::sync::oneshot::channel::<()>();
        let (go_on, resume) = std::sync::mpsc::channel::<()>();
        let handle = tokio::runtime::Handle::current();
        let reader = tokio::task::spawn_blocking(move || -> std::io::Result<usize> {
            let mut reader = blocking_reader(store.as_ref(), "reports/big", &handle)?;
            let mut head = vec![0u8; 64 * 1024];
            reader.read_exact(&mut head)?;
            let _ = first_read.send(());
            let _ = resume.recv();
            let mut rest = Vec::new();
            reader.read_to_end(&mut rest)
        });
        read_once.await.expect("the first 64 KiB were read");
        if let Some(proxy) = &proxy {
            proxy.hang();
        }
        go_on.send(()).expect("reader waiting");
        let outcome = finishes("reading the body", reader)
            .await
            .expect("reader task");
        let err = outcome.expect_err("a body that stopped coming was read to its end");
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    }

    /// An upload or download through the API with S3 hung answers 503 instead of waiting without
    /// end.
    #[tokio::test]
    async fn an_upload_to_or_download_from_a_hung_s3_answers_service_unavailable() {
        let test_config = TestConfig::new().await;
        let mut config = test_config.config.clone();
        config.workers = 0;
        let mut backends = rampart::app::open_backends(&config)
            .await
            .expect("backends");
        let proxy = HangingProxy::start(None).await;
        backends.store =
            Arc::new(store_at(&format!("http://{}", proxy.addr), "hung", ("k", "s")).await);
        let mut app = TestApp::spawn_with_backends(config, backends).await;
        app.test_config = Some(test_config);
        let token = app.login_admin().await;
        let report = rampart::ingest::synthetic::sarif(
            "semgrep",
            (0..5).map(rampart::ingest::synthetic::SyntheticResult::numbered),
        );
        let res = finishes(
            "the upload",
            app.ingest(Auth::Bearer(&token), "target=svc&format=sarif", report),
        )
        .await;
        crate::support::assert_envelope(&res.body, 503, "SERVICE_UNAVAILABLE");

        // A download of a report kept there answers 503 too.
        use sea_orm::{ActiveModelTrait, Set};
        let db = &app.state.db;
        let org = crate::support::builders::org_id(db, "default").await;
        let target =
            crate::support::builders::target(db, org, "application", "kept", serde_json::json!({}))
                .await;
        let scan =
            crate::support::builders::scan(db, &target, "complete", chrono::Utc::now(), None).await;
        let mut row: entity::scan::ActiveModel = scan.clone().into();
        row.raw_key = Set(Some(format!("reports/{org}/{}", scan.id.simple())));
        row.raw_sha256 = Set(Some("0".repeat(64)));
        row.update(db).await.expect("raw key");
        let res = finishes(
            "the download",
            app.http
                .get(app.url(&format!("/api/v1/scans/{}/raw", scan.id)))
                .bearer_auth(&token)
                .send(),
        )
        .await
        .expect("an answer");
        assert_eq!(res.status(), 503);
        let body: serde_json::Value = res.json().await.expect("JSON body");
        crate::support::assert_envelope(&body, 503, "SERVICE_UNAVAILABLE");
    }

    /// A store that keeps reports in the run's store but reads them back from a hung S3.
    struct HungReads {
        inner: Arc<dyn ObjectStore>,
        hung: S3Store,
    }

    #[async_trait::async_trait]
    impl ObjectStore for HungReads {
        async fn put(
            &self,
            key: &str,
            body: ByteStream,
        ) -> Result<u64, rampart::store::StoreError> {
            self.inner.put(key, body).await
        }
        async fn get(
            &self,
            key: &str,
        ) -> Result<Option<rampart::store::StoredObject>, rampart::store::StoreError> {
            self.hung.get(key).await
        }
        async fn delete(&self, key: &str) -> Result<(), rampart::store::StoreError> {
            self.inner.delete(key).await
        }
        async fn list(
            &self,
            prefix: &str,
        ) -> Result<rampart::store::ObjectList, rampart::store::StoreError> {
            self.inner.list(prefix).await
        }
        async fn remove_incomplete(
            &self,
            before: chrono::DateTime<chrono::Utc>,
        ) -> Result<u64, rampart::store::StoreError> {
            self.inner.remove_incomplete(before).await
        }
        async fn check(&self) -> Result<(), rampart::store::StoreError> {
            self.inner.check().await
        }
        fn kind(&self) -> &'static str {
            self.inner.kind()
        }
    }

    /// A worker whose report read hangs gets an error, and its attempt fails (here its last,
    /// so the scan fails, saying why) instead of blocking the worker for good.
    #[tokio::test]
    async fn a_worker_reading_from_a_hung_s3_fails_its_attempt() {
        let test_config = TestConfig::new().await;
        let mut config = test_config.config.clone();
        config.job_max_attempts = 1;
        let mut backends = rampart::app::open_backends(&config)
            .await
            .expect("backends");
        let proxy = HangingProxy::start(None).await;
        backends.store = Arc::new(HungReads {
            inner: backends.store.clone(),
            hung: store_at(&format!("http://{}", proxy.addr), "hung", ("k", "s")).await,
        });
        let mut app = TestApp::spawn_with_backends(config, backends).await;
        app.test_config = Some(test_config);
        let token = app.login_admin().await;
        let report = rampart::ingest::synthetic::sarif(
            "semgrep",
            (0..5).map(rampart::ingest::synthetic::SyntheticResult::numbered),
        );
        let res = app
            .ingest(Auth::Bearer(&token), "target=svc&format=sarif", report)
            .await;
        assert_eq!(res.status, 202, "{}", res.body);
        let id = res.body["data"]["id"].as_str().unwrap().to_string();
        let scan = finishes("the scan", app.wait_scan(Auth::Bearer(&token), &id)).await;
        assert_eq!(scan["status"], "FAILED", "{scan}");
        let error = scan["error"].as_str().unwrap_or_default();
        assert!(error.contains("reading the report"), "{error}");
    }
}
