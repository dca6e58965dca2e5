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
