//! Running one engine process: its own process group, a cleared environment, arguments as a
//! vector (never a shell), a wall-clock timeout, an address-space limit, a bounded report and
//! the tail of its standard error. Stopping it (timeout, cancel, output too large) kills the
//! whole group, so nothing it started outlives it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

/// How much of standard error is kept (its end).
const STDERR_TAIL_BYTES: usize = 16 * 1024;
/// How often the report's size is checked against the limit.
const WATCH_EVERY: Duration = Duration::from_millis(200);

/// What to run.
pub struct RunSpec {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// The working directory.
    pub cwd: PathBuf,
    /// The whole environment of the process.
    pub env: Vec<(OsString, OsString)>,
    /// Standard output goes here (the report, or the engine's chatter).
    pub stdout: PathBuf,
    /// The file whose size is bounded by `max_output` (the report).
    pub report: PathBuf,
    pub max_output: u64,
    pub timeout: Duration,
    /// RLIMIT_AS in bytes.
    pub memory_limit: Option<u64>,
}

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// It exited by itself: its code, or the signal that ended it.
    Exited {
        code: Option<i32>,
        signal: Option<i32>,
    },
    TimedOut,
    Cancelled,
    OutputTooLarge,
}

/// A finished run.
#[derive(Debug)]
pub struct Finished {
    pub ended: Ended,
    /// The last bytes of its standard error, as text.
    pub stderr: String,
}

/// The environment every engine gets: a PATH (the executable's own directory first, for
/// engines that are scripts of a virtual environment), a private HOME and TMPDIR, a UTF-8
/// locale. Nothing of Rampart's own environment (secrets, credentials) is passed on.
pub fn base_env(program: &Path, home: &Path) -> Vec<(OsString, OsString)> {
    let mut path: Vec<PathBuf> = program
        .parent()
        .map(Path::to_path_buf)
        .into_iter()
        .collect();
    path.extend(["/usr/local/bin", "/usr/bin", "/bin"].map(PathBuf::from));
    let path = std::env::join_paths(path).unwrap_or_else(|_| OsString::from("/usr/bin:/bin"));
    vec![
        ("PATH".into(), path),
        ("HOME".into(), home.as_os_str().to_owned()),
        ("TMPDIR".into(), home.as_os_str().to_owned()),
        ("LANG".into(), "C.UTF-8".into()),
        ("LC_ALL".into(), "C.UTF-8".into()),
        ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
        ("NO_COLOR".into(), "1".into()),
        ("GIT_TERMINAL_PROMPT".into(), "0".into()),
    ]
}

/// The last `n` non-empty lines of `text`.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Kills every process of the group.
fn kill_group(pgid: i32) {
    if pgid > 0 {
        // SAFETY: kill(2) with a negative pid signals the group; no memory is involved.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

/// Runs `spec` until it exits, times out, is stopped through `stop`, or writes more than
/// `max_output`.
///
/// # Errors
/// When the process cannot be started or its output files cannot be created.
pub async fn run(spec: RunSpec, stop: CancellationToken) -> std::io::Result<Finished> {
    let stdout = std::fs::File::create(&spec.stdout)?;
    let mut command = tokio::process::Command::new(&spec.program);
    command
        .args(&spec.args)
        .current_dir(&spec.cwd)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::piped())
        // A group of its own: killing it reaches everything the engine started.
        .process_group(0)
        .kill_on_drop(true);
    let memory = spec.memory_limit;
    // SAFETY: only async-signal-safe calls (setrlimit, prctl) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            let none = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &none);
            // Dies with the worker process (a worker killed outright leaves no engine behind).
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if let Some(bytes) = memory {
                let limit = libc::rlimit {
                    rlim_cur: bytes as libc::rlim_t,
                    rlim_max: bytes as libc::rlim_t,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut child = command.spawn()?;
    let pgid = child.id().map_or(0, |id| id as i32);
    let mut stderr = child.stderr.take();
    let tail = tokio::spawn(async move {
        let mut kept: Vec<u8> = Vec::new();
        let mut buf = [0u8; 8192];
        if let Some(stderr) = stderr.as_mut() {
            while let Ok(n) = stderr.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * STDERR_TAIL_BYTES {
                    kept.drain(..kept.len() - STDERR_TAIL_BYTES);
                }
            }
        }
        let from = kept.len().saturating_sub(STDERR_TAIL_BYTES);
        String::from_utf8_lossy(&kept[from..]).into_owned()
    });

    let deadline = tokio::time::sleep(spec.timeout);
    tokio::pin!(deadline);
    let mut watch = tokio::time::interval(WATCH_EVERY);
    let ended = loop {
        tokio::select! {
            status = child.wait() => {
                let status = status?;
                use std::os::unix::process::ExitStatusExt;
                break Ended::Exited { code: status.code(), signal: status.signal() };
            }
            () = &mut deadline => break Ended::TimedOut,
            () = stop.cancelled() => break Ended::Cancelled,
            _ = watch.tick() => {
                let size = tokio::fs::metadata(&spec.report).await.map_or(0, |m| m.len());
                if size > spec.max_output {
                    break Ended::OutputTooLarge;
                }
            }
        }
    };
    // Whatever ended it, nothing of the group stays behind (an engine's helpers included).
    kill_group(pgid);
    if !matches!(ended, Ended::Exited { .. }) {
        let _ = child.wait().await;
    }
    // The pipe closes once the whole group is gone.
    let stderr = tokio::time::timeout(Duration::from_secs(2), tail)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let ended = match ended {
        Ended::Exited { .. }
            if tokio::fs::metadata(&spec.report)
                .await
                .map_or(0, |m| m.len())
                > spec.max_output =>
        {
            Ended::OutputTooLarge
        }
        other => other,
    };
    Ok(Finished { ended, stderr })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn spec(dir: &Path, script: &str) -> RunSpec {
        RunSpec {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            cwd: dir.to_path_buf(),
            env: base_env(Path::new("/bin/sh"), dir),
            stdout: dir.join("out"),
            report: dir.join("out"),
            max_output: 1024,
            timeout: Duration::from_secs(30),
            memory_limit: None,
        }
    }

    #[tokio::test]
    async fn output_and_stderr_tail_and_exit_code() {
        let dir = tempfile::tempdir().unwrap();
        let done = run(
            spec(
                dir.path(),
                "echo report; echo oops >&2; echo last >&2; exit 3",
            ),
            CancellationToken::new(),
        )
        .await
        .unwrap();
        assert_eq!(
            done.ended,
            Ended::Exited {
                code: Some(3),
                signal: None
            }
        );
        assert_eq!(last_lines(&done.stderr, 1), "last");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out")).unwrap(),
            "report\n"
        );
    }

    #[tokio::test]
    async fn the_environment_holds_nothing_of_ours() {
        let dir = tempfile::tempdir().unwrap();
        std::env::set_var("RAMPART_TEST_SECRET_FOR_ENGINES", "hunter2");
        let done = run(spec(dir.path(), "env"), CancellationToken::new())
            .await
            .unwrap();
        assert!(matches!(done.ended, Ended::Exited { code: Some(0), .. }));
        let env = std::fs::read_to_string(dir.path().join("out")).unwrap();
        assert!(
            !env.contains("hunter2") && !env.contains("RAMPART"),
            "{env}"
        );
        assert!(env.contains("HOME="), "{env}");
    }

    #[tokio::test]
    async fn cancelling_kills_the_whole_group_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let stop = CancellationToken::new();
        let pidfile = dir.path().join("child.pid");
        // A grandchild in the same group, which would outlive a kill of the shell alone.
        let script = format!("sleep 300 & echo $! > {}; wait", pidfile.display());
        let task = tokio::spawn(run(spec(dir.path(), &script), stop.clone()));
        while !pidfile.exists() || std::fs::read_to_string(&pidfile).unwrap().trim().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let grandchild: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let started = Instant::now();
        stop.cancel();
        let done = task.await.unwrap().unwrap();
        assert_eq!(done.ended, Ended::Cancelled);
        // The signal reaches every process of the group at once, but the kernel takes a moment
        // to end each: the promise is that the whole group is gone within 2 s of the cancel.
        let gone = || {
            // SAFETY: signal 0 only checks whether the process exists.
            let alive = unsafe { libc::kill(grandchild, 0) } == 0;
            let zombie = std::fs::read_to_string(format!("/proc/{grandchild}/stat"))
                .map(|s| s.contains(") Z "))
                .unwrap_or(true);
            !alive || zombie
        };
        while !gone() && started.elapsed() < Duration::from_secs(2) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(gone(), "the grandchild survived");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_timeout_and_too_much_output_stop_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let mut slow = spec(dir.path(), "sleep 300");
        slow.timeout = Duration::from_millis(300);
        let done = run(slow, CancellationToken::new()).await.unwrap();
        assert_eq!(done.ended, Ended::TimedOut);

        let chatty = spec(dir.path(), "yes; sleep 300");
        let done = run(chatty, CancellationToken::new()).await.unwrap();
        assert_eq!(done.ended, Ended::OutputTooLarge);
    }

    #[tokio::test]
    async fn the_memory_limit_holds() {
        let dir = tempfile::tempdir().unwrap();
        let mut big = spec(dir.path(), "python3 -c 'x = bytearray(512 * 1024 * 1024)'");
        big.env = base_env(Path::new("/usr/bin/python3"), dir.path());
        big.memory_limit = Some(256 * 1024 * 1024);
        let done = run(big, CancellationToken::new()).await.unwrap();
        assert!(
            !matches!(done.ended, Ended::Exited { code: Some(0), .. }),
            "{:?} {}",
            done.ended,
            done.stderr
        );
        assert!(done.stderr.contains("MemoryError"), "{}", done.stderr);
    }
}
