//! Which engines this process can run: each found at its configured path or on the PATH, its
//! version read once at start-up (in the background; the first caller waits for it).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Enum, SimpleObject};
use serde::Serialize;
use tokio::sync::OnceCell;

use super::{Engine, ALL};
use crate::config::Config;

/// How long reading an engine's version may take (Checkov and Semgrep start slowly).
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether an engine can run here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EngineStatus {
    /// Found, and it told its version.
    Available,
    /// Not found, or it did not run.
    Unavailable,
}

/// One engine as this process sees it.
#[derive(Clone, Debug, SimpleObject, Serialize, utoipa::ToSchema)]
pub struct EngineInfo {
    /// The name `startScan` takes (`bandit`, `semgrep`, `checkov`, `detect-secrets`).
    pub name: String,
    pub description: String,
    pub status: EngineStatus,
    /// As the engine reported it.
    pub version: Option<String>,
    /// The executable run.
    pub path: Option<String>,
    /// The ingest format of its reports.
    pub format: String,
    /// Why it is unavailable.
    pub error: Option<String>,
}

struct Entry {
    engine: &'static dyn Engine,
    program: Result<PathBuf, String>,
    probe: OnceCell<Result<String, String>>,
}

/// The engines of this process.
pub struct Registry {
    entries: Vec<Entry>,
    /// Engine runs at once in this process (`RAMPART_ENGINE_CONCURRENCY`).
    runs: Arc<tokio::sync::Semaphore>,
}

impl Registry {
    /// Finds every engine (configured path, else the PATH); nothing runs yet.
    pub fn discover(config: &Config) -> Self {
        let search = std::env::var_os("PATH").unwrap_or_default();
        let entries = ALL
            .into_iter()
            .map(|engine| Entry {
                engine,
                program: locate(engine, config, &search),
                probe: OnceCell::new(),
            })
            .collect();
        Self {
            entries,
            runs: Arc::new(tokio::sync::Semaphore::new(
                config.engine_concurrency.max(1),
            )),
        }
    }

    /// A place among this process's engine runs, waiting for one to end when all are taken.
    ///
    /// # Errors
    /// Never in practice (the semaphore is never closed).
    pub async fn permit(
        &self,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, tokio::sync::AcquireError> {
        self.runs.clone().acquire_owned().await
    }

    /// Reads every engine's version in the background, so the first listing need not wait.
    pub fn probe_in_background(self: &Arc<Self>) {
        let this = self.clone();
        tokio::spawn(async move {
            futures::future::join_all(this.entries.iter().map(Entry::probe)).await;
        });
    }

    /// Every engine with its availability and version.
    pub async fn list(&self) -> Vec<EngineInfo> {
        futures::future::join_all(self.entries.iter().map(Entry::info)).await
    }

    /// One engine's availability, and the executable to run when available.
    pub async fn get(&self, name: &str) -> Option<(EngineInfo, Option<PathBuf>)> {
        let entry = self
            .entries
            .iter()
            .find(|e| e.engine.name().eq_ignore_ascii_case(name.trim()))?;
        let info = entry.info().await;
        let program = (info.status == EngineStatus::Available)
            .then(|| entry.program.clone().ok())
            .flatten();
        Some((info, program))
    }
}

impl Entry {
    async fn probe(&self) -> &Result<String, String> {
        self.probe
            .get_or_init(|| async {
                let program = self.program.as_ref().map_err(Clone::clone)?;
                read_version(self.engine, program).await
            })
            .await
    }

    async fn info(&self) -> EngineInfo {
        let probe = self.probe().await;
        EngineInfo {
            name: self.engine.name().into(),
            description: self.engine.description().into(),
            status: if probe.is_ok() {
                EngineStatus::Available
            } else {
                EngineStatus::Unavailable
            },
            version: probe.as_ref().ok().cloned(),
            path: self.program.as_ref().ok().map(|p| p.display().to_string()),
            format: self.engine.report_format().as_str().into(),
            error: probe.as_ref().err().cloned(),
        }
    }
}

/// The configured path, or the first executable of that name on `search` (a PATH).
fn locate(
    engine: &dyn Engine,
    config: &Config,
    search: &std::ffi::OsStr,
) -> Result<PathBuf, String> {
    if let Some((_, path)) = config
        .engine_paths
        .iter()
        .find(|(name, _)| name == engine.name())
    {
        return if is_executable(path) {
            Ok(path.clone())
        } else {
            Err(format!(
                "{} (configured in RAMPART_ENGINE_PATHS) is not an executable file",
                path.display()
            ))
        };
    }
    std::env::split_paths(search)
        .map(|dir| dir.join(engine.program()))
        .find(|p| is_executable(p))
        .ok_or_else(|| {
            format!(
                "`{}` is not on the PATH and RAMPART_ENGINE_PATHS names no path for {}",
                engine.program(),
                engine.name()
            )
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs the engine's version command (no shell, minimal environment, bounded in time).
async fn read_version(engine: &dyn Engine, program: &Path) -> Result<String, String> {
    let scratch = tempfile::tempdir().map_err(|e| format!("no scratch directory: {e}"))?;
    let mut command = tokio::process::Command::new(program);
    command
        .args(engine.version_args())
        .current_dir(scratch.path())
        .env_clear()
        .envs(super::process::base_env(program, scratch.path()))
        .envs(engine.env().iter().copied())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(PROBE_TIMEOUT, command.output())
        .await
        .map_err(|_| {
            format!(
                "`{} --version` did not answer in {PROBE_TIMEOUT:?}",
                engine.program()
            )
        })?
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        return Err(format!(
            "`{} --version` failed ({}): {}",
            engine.program(),
            output.status,
            super::process::last_lines(&err, 5)
        ));
    }
    engine.parse_version(&text).ok_or_else(|| {
        format!(
            "no version in what `{} --version` printed",
            engine.program()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_engine_is_unavailable_with_the_reason() {
        let mut config = Config::with_data_dir("/tmp/x");
        config.engine_paths = vec![("bandit".into(), "/nonexistent/bandit".into())];
        let registry = Registry {
            entries: ALL
                .into_iter()
                .map(|engine| Entry {
                    engine,
                    program: locate(engine, &config, std::ffi::OsStr::new("/nonexistent")),
                    probe: OnceCell::new(),
                })
                .collect(),
            runs: Arc::new(tokio::sync::Semaphore::new(1)),
        };
        let list = registry.list().await;
        assert_eq!(list.len(), ALL.len());
        let bandit = list.iter().find(|e| e.name == "bandit").unwrap();
        assert_eq!(bandit.status, EngineStatus::Unavailable);
        assert!(bandit
            .error
            .as_deref()
            .unwrap()
            .contains("/nonexistent/bandit"));
        let semgrep = list.iter().find(|e| e.name == "semgrep").unwrap();
        assert!(semgrep
            .error
            .as_deref()
            .unwrap()
            .contains("not on the PATH"));
    }

    #[tokio::test]
    async fn an_engine_on_the_path_tells_its_version() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("detect-secrets");
        std::fs::write(&fake, "#!/bin/sh\necho 1.5.0\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let config = Config::with_data_dir("/tmp/x");
        let engine = super::super::by_name("detect-secrets").unwrap();
        let program = locate(engine, &config, dir.path().as_os_str()).unwrap();
        assert_eq!(program, fake);
        assert_eq!(read_version(engine, &program).await.unwrap(), "1.5.0");
    }
}
