//! Secrets generated on first start and kept in the data directory.

use std::path::Path;

use anyhow::Context as _;
use rand::RngCore;

use crate::config::Config;

/// Key material that must never be printed.
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The file, in the data directory, of a generated signing secret.
pub const JWT_SECRET_FILE: &str = "jwt-secret";

/// The access-token signing secret: `RAMPART_JWT_SECRET` when given, otherwise the one in
/// `<data-dir>/jwt-secret`, generated (256 random bits, mode 0600) on first start.
///
/// # Errors
/// When the given secret is too short or the file cannot be read or written.
pub async fn jwt_secret(config: &Config) -> anyhow::Result<Secret> {
    if let Some(given) = &config.jwt_secret {
        anyhow::ensure!(
            given.len() >= 32,
            "RAMPART_JWT_SECRET must be at least 32 characters"
        );
        return Ok(Secret(given.as_bytes().to_vec()));
    }
    let path = config.data_dir.join(JWT_SECRET_FILE);
    if let Some(existing) = read_secret(&path).await? {
        return Ok(existing);
    }
    if config.database_url.is_some() {
        tracing::warn!(
            "RAMPART_JWT_SECRET is not set: generated one in {}; replicas must share one secret",
            path.display()
        );
    }
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    write_private(&path, hex::encode(bytes).as_bytes()).await?;
    // Read back what is on disk, so two processes racing on first start agree.
    read_secret(&path)
        .await?
        .context("jwt secret vanished after writing it")
}

async fn read_secret(path: &Path) -> anyhow::Result<Option<Secret>> {
    match tokio::fs::read_to_string(path).await {
        Ok(text) if text.trim().len() >= 32 => Ok(Some(Secret(text.trim().as_bytes().to_vec()))),
        Ok(_) => anyhow::bail!("{} is too short to be a secret", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes `contents` to `path` unless it exists, so that no reader ever sees it half written:
/// the bytes go to a private temporary file first, which is then hard-linked into place (a link
/// never replaces an existing file, and appears whole). Processes starting together on one
/// data directory then all read the one secret that won.
async fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut temp = path.as_os_str().to_owned();
    temp.push(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
    let temp = std::path::PathBuf::from(temp);
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let written = async {
        use tokio::io::AsyncWriteExt;
        let mut file = options.open(&temp).await?;
        file.write_all(contents).await?;
        file.sync_all().await
    }
    .await
    .with_context(|| format!("cannot write {}", temp.display()));
    let linked = match written {
        Ok(()) => match tokio::fs::hard_link(&temp, path).await {
            // Another process won the race; its secret is the one to use.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            other => other.with_context(|| format!("cannot write {}", path.display())),
        },
        Err(e) => Err(e),
    };
    let _ = tokio::fs::remove_file(&temp).await;
    linked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn generated_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::with_data_dir(dir.path());
        let first = jwt_secret(&config).await.unwrap();
        let second = jwt_secret(&config).await.unwrap();
        assert_eq!(first.expose(), second.expose());
        assert_eq!(first.expose().len(), 64);
        assert_eq!(format!("{first:?}"), "Secret(***)");
    }

    /// Processes starting together on one data directory: each sees a whole secret, the same.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_starts_agree_on_one_whole_secret() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let config = Config::with_data_dir(dir.path());
            let starts: Vec<_> = (0..8)
                .map(|_| {
                    let config = config.clone();
                    tokio::spawn(async move { jwt_secret(&config).await })
                })
                .collect();
            let mut secrets = Vec::new();
            for start in starts {
                secrets.push(start.await.unwrap().expect("a whole secret"));
            }
            assert!(secrets.iter().all(|s| s.expose() == secrets[0].expose()));
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        }
    }

    #[tokio::test]
    async fn short_configured_secret_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::with_data_dir(dir.path());
        config.jwt_secret = Some("short".into());
        assert!(jwt_secret(&config).await.is_err());
    }
}
