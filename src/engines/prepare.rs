//! Preparing a run's source in its scratch directory: an archive fetched from the object
//! store and extracted, a server directory copied, or a git repository cloned shallowly.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::process::{self, Ended, RunSpec};
use super::sources::{self, Limits, SourceError, SourceSpec};
use crate::app::AppState;
use crate::ingest::jobs::Lease;
use crate::ingest::pipeline::Failure;

/// How long a git clone may take.
const CLONE_TIMEOUT: Duration = Duration::from_secs(300);
/// How many lines of git's standard error a failure message keeps.
const STDERR_LINES: usize = 12;

/// Why the source could not be prepared.
pub(crate) enum Prepared {
    /// The source's fault: the scan fails with this message.
    Rejected(String),
    Failed(Failure),
}

/// Puts the source's files into `src`.
pub(crate) async fn prepare(
    state: &AppState,
    source: &SourceSpec,
    src: &Path,
    lease: &Lease,
) -> Result<(), Prepared> {
    let limits = Limits::of(&state.config);
    let from_source = |err: SourceError| match err {
        SourceError::Rejected(message) => Prepared::Rejected(message),
        SourceError::Io(err) => {
            Prepared::Failed(Failure::Transient(format!("preparing the source: {err}")))
        }
    };
    match source {
        SourceSpec::Archive { key, format } => {
            let archive = src.with_file_name("source.archive");
            fetch_object(state, key, &archive).await?;
            lease.touch();
            let (format, src) = (*format, src.to_path_buf());
            blocking(move || {
                std::fs::create_dir_all(&src)?;
                sources::extract(&archive, format, Some(&src), limits)?;
                std::fs::remove_file(&archive)?;
                Ok(())
            })
            .await
            .map_err(from_source)
        }
        SourceSpec::Path { path } => {
            let (path, src) = (path.clone(), src.to_path_buf());
            let roots = state.config.engine_source_roots.clone();
            blocking(move || {
                // Checked again: the roots may have changed since the scan was queued.
                let dir = sources::allowed_dir(&path.to_string_lossy(), &roots)?;
                sources::copy_tree(&dir, &src, limits).map(|_| ())
            })
            .await
            .map_err(from_source)
        }
        SourceSpec::Git { url, reference } => {
            let clone = src.with_file_name("clone");
            let git = PathBuf::from("git");
            let home = src.with_file_name("home");
            std::fs::create_dir_all(&home)
                .map_err(|e| Prepared::Failed(Failure::Transient(format!("scratch: {e}"))))?;
            let mut env = process::base_env(Path::new("/usr/bin/git"), &home);
            env.push(("GIT_CONFIG_NOSYSTEM".into(), "1".into()));
            let spec = RunSpec {
                program: git,
                args: sources::git_clone_args(url, reference.as_deref(), &clone),
                cwd: home.clone(),
                env,
                stdout: home.join("git.out"),
                report: home.join("git.out"),
                max_output: 1 << 20,
                timeout: CLONE_TIMEOUT,
                memory_limit: None,
            };
            let finished = process::run(spec, CancellationToken::new())
                .await
                .map_err(|e| Prepared::Failed(Failure::Transient(format!("running git: {e}"))))?;
            if finished.ended
                != (Ended::Exited {
                    code: Some(0),
                    signal: None,
                })
            {
                return Err(Prepared::Rejected(format!(
                    "the repository could not be cloned: {}",
                    process::last_lines(&finished.stderr, STDERR_LINES)
                )));
            }
            lease.touch();
            let src = src.to_path_buf();
            blocking(move || {
                let copied = sources::copy_tree(&clone, &src, limits).map(|_| ());
                let _ = std::fs::remove_dir_all(&clone);
                copied
            })
            .await
            .map_err(from_source)
        }
    }
}

async fn fetch_object(state: &AppState, key: &str, to: &Path) -> Result<(), Prepared> {
    let object = state
        .store
        .get(key)
        .await
        .map_err(|e| {
            Prepared::Failed(Failure::Transient(format!(
                "reading the source archive: {e}"
            )))
        })?
        .ok_or_else(|| Prepared::Rejected("the source archive is no longer stored".into()))?;
    let mut file = tokio::fs::File::create(to)
        .await
        .map_err(|e| Prepared::Failed(Failure::Transient(format!("scratch: {e}"))))?;
    let mut reader = tokio_util::io::StreamReader::new(object.body);
    tokio::io::copy(&mut reader, &mut file).await.map_err(|e| {
        Prepared::Failed(Failure::Transient(format!(
            "reading the source archive: {e}"
        )))
    })?;
    Ok(())
}

async fn blocking(
    f: impl FnOnce() -> Result<(), SourceError> + Send + 'static,
) -> Result<(), SourceError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SourceError::Io(std::io::Error::other(e)))?
}
