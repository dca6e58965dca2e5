//! Throw-away backends of the fault suite's own, on loopback ports: a PostgreSQL cluster, a
//! Redis server and an S3 server (s3s-fs), each of which a test can stop, start, or freeze.
//! Nothing here touches the machine's own services.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// A free loopback port (free when asked; the caller binds it soon after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Waits until something accepts connections on `port`.
pub fn wait_for_port(port: u16, what: &str) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what} did not start listening on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run(command: &mut Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The directory holding `initdb` and `pg_ctl`.
fn postgres_bin() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("pg_ctl").exists())
        .collect();
    dirs.sort();
    dirs.pop().expect("a PostgreSQL version with pg_ctl")
}

/// A PostgreSQL cluster in a temporary directory (trust auth, no fsync), run as `postgres`
/// when the suite runs as root (the server refuses root).
pub struct Postgres {
    pub port: u16,
    dir: TempDir,
    bin: PathBuf,
    as_postgres: bool,
}

impl Postgres {
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("rampart-fault-pg")
            .tempdir()
            .expect("temp dir");
        let as_postgres = is_root();
        if as_postgres {
            run(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(dir.path()),
                "chown",
            );
        }
        let pg = Self {
            port: free_port(),
            dir,
            bin: postgres_bin(),
            as_postgres,
        };
        let data = pg.data();
        run(
            &mut pg.command("initdb", &["-A", "trust", "-U", "postgres", "-D", &data]),
            "initdb",
        );
        pg.up();
        pg
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn command(&self, tool: &str, args: &[&str]) -> Command {
        let tool = self.bin.join(tool).display().to_string();
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", &tool]);
            c
        } else {
            Command::new(tool)
        };
        command.args(args).stdin(Stdio::null());
        command
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Starts the server and waits until it accepts connections.
    pub fn up(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        run(
            &mut self.command(
                "pg_ctl",
                &[
                    "-D",
                    &self.data(),
                    "-o",
                    &options,
                    "-l",
                    &log,
                    "-w",
                    "start",
                ],
            ),
            "pg_ctl start",
        );
        wait_for_port(self.port, "PostgreSQL");
    }

    /// Stops the server (fast: open connections are cut).
    pub fn down(&self) {
        run(
            &mut self.command("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]),
            "pg_ctl stop",
        );
    }

    /// Creates a database.
    pub fn create_database(&self, name: &str) {
        let createdb = self.bin.join("createdb");
        run(
            Command::new(createdb).args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                name,
            ]),
            "createdb",
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl", &["-D", &self.data(), "-m", "immediate", "stop"])
            .output();
    }
}

/// A child process that is stopped when dropped.
struct Owned(Child);

impl Drop for Owned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A Redis server that keeps nothing on disk.
pub struct Redis {
    pub port: u16,
    process: Option<Owned>,
}

impl Redis {
    pub fn start() -> Self {
        let mut redis = Self {
            port: free_port(),
            process: None,
        };
        redis.up();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn up(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server)");
        self.process = Some(Owned(child));
        wait_for_port(self.port, "Redis");
    }

    pub fn down(&mut self) {
        self.process = None;
    }
}

/// An S3 server (s3s-fs, which checks signatures as AWS does) on a temporary directory.
pub struct S3 {
    pub port: u16,
    pub access_key: String,
    pub secret_key: String,
    dir: TempDir,
    process: Option<Owned>,
}

impl S3 {
    pub fn start() -> Self {
        let mut s3 = Self {
            port: free_port(),
            access_key: "fault-suite".into(),
            secret_key: format!("fault-suite-{}", uuid::Uuid::new_v4().simple()),
            dir: tempfile::tempdir().expect("temp dir"),
            process: None,
        };
        s3.up();
        s3
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn up(&mut self) {
        let child = Command::new("s3s-fs")
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--access-key",
                &self.access_key,
                "--secret-key",
                &self.secret_key,
            ])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs (cargo install s3s-fs@0.14.1 --locked --features binary)");
        self.process = Some(Owned(child));
        wait_for_port(self.port, "s3s-fs");
    }

    pub fn down(&mut self) {
        self.process = None;
    }

    /// Freezes the server (SIGSTOP): connections are accepted by the kernel and then nothing
    /// answers, as with a hung server.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.process.as_ref().expect("running").0.id();
        run(
            Command::new("kill").args([signal, &pid.to_string()]),
            "kill",
        );
    }

    /// Creates a bucket (a directory, for s3s-fs).
    pub fn create_bucket(&self, name: &str) {
        std::fs::create_dir_all(self.dir.path().join(name)).expect("bucket directory");
    }
}
