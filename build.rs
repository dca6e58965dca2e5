//! Fetches the pinned GraphiQL and React builds (src/http/playground/package*.json) with
//! `npm ci` into OUT_DIR, once per target directory, so that `src/http/playground.rs` can embed
//! them with `include_bytes!`. Nothing from node_modules is ever committed or served from a CDN.
//!
//! It also tells the tests which of their prerequisites this machine has (see
//! [`test_prerequisites`]), so that a test needing something absent is reported as ignored with
//! its reason instead of passing without running.

use std::path::{Path, PathBuf};
use std::process::{exit, Command, Stdio};
use std::{env, fs};

const PACKAGE_DIR: &str = "src/http/playground";
const PACKAGE_FILES: [&str; 2] = ["package.json", "package-lock.json"];
/// The files `src/http/playground.rs` embeds, relative to `OUT_DIR/playground`.
const EMBEDDED: [&str; 4] = [
    "node_modules/graphiql/dist/index.umd.js",
    "node_modules/graphiql/dist/style.css",
    "node_modules/react/umd/react.production.min.js",
    "node_modules/react-dom/umd/react-dom.production.min.js",
];
/// Written after a successful install: the lock file it installed.
const STAMP: &str = "node_modules/.rampart-installed-lock.json";

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    exit(1);
}

fn main() {
    test_prerequisites();
    for file in PACKAGE_FILES {
        println!("cargo:rerun-if-changed={PACKAGE_DIR}/{file}");
    }
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("playground");
    fs::create_dir_all(&out)
        .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", out.display())));
    for file in PACKAGE_FILES {
        let from = Path::new(PACKAGE_DIR).join(file);
        fs::copy(&from, out.join(file))
            .unwrap_or_else(|e| fail(&format!("cannot copy {}: {e}", from.display())));
    }

    let lock = fs::read(out.join("package-lock.json")).unwrap_or_default();
    let installed = fs::read(out.join(STAMP)).ok();
    let complete = EMBEDDED.iter().all(|file| out.join(file).is_file());
    if complete && installed.as_deref() == Some(lock.as_slice()) {
        return;
    }

    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    if Command::new(npm).arg("--version").output().is_err() {
        fail("building Rampart needs npm (Node.js) to fetch the pinned GraphiQL assets");
    }
    let status = Command::new(npm)
        .args([
            "ci",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ])
        .current_dir(&out)
        // Cargo reads a build script's stdout for instructions: npm's chatter goes to stderr.
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .unwrap_or_else(|e| fail(&format!("cannot run `npm ci`: {e}")));
    if !status.success() {
        fail(&format!(
            "`npm ci` failed in {} ({status}): building Rampart needs the npm registry (or a \
             warm npm cache) to fetch the pinned GraphiQL assets",
            out.display()
        ));
    }
    if let Some(missing) = EMBEDDED.iter().find(|file| !out.join(file).is_file()) {
        fail(&format!("`npm ci` did not produce {missing}: check the pinned versions in {PACKAGE_DIR}/package.json"));
    }
    fs::write(out.join(STAMP), &lock)
        .unwrap_or_else(|e| fail(&format!("cannot write the install stamp: {e}")));
}

/// Sets a `rampart_has_*` cfg for each test prerequisite this machine has; tests that need one
/// carry `#[cfg_attr(not(rampart_has_x), ignore = "needs x")]`, so `cargo test` lists them as
/// ignored with the reason where it is absent. Under `CI=true` every file prerequisite counts as
/// present: the tests then run and fail on a missing one. The backend a test run uses is
/// chosen by the `RAMPART_TEST_*` variables (tests/integration/support), in CI too; a test of
/// one backend is ignored in the other's run, which CI also makes.
///
/// A prerequisite's appearance re-runs this script through the nearest existing path watched
/// below; one that appears where nothing is watched (`../shared` itself) needs `touch build.rs`.
fn test_prerequisites() {
    const FILES: [(&str, &str); 7] = [
        // The conformance samples beside the checkout.
        ("rampart_has_samples", "../shared/samples"),
        // graphql-js and Playwright (`npm ci` in tests/standard-clients).
        (
            "rampart_has_node_clients",
            "tests/standard-clients/node_modules/.package-lock.json",
        ),
        // graphql-core (tests/standard-clients/.venv).
        (
            "rampart_has_graphql_core",
            "tests/standard-clients/.venv/bin/python",
        ),
        ("rampart_has_chromium", "/usr/bin/chromium"),
        // aiosmtpd (tests/standard-clients/.venv), the SMTP server of the password-reset tests.
        (
            "rampart_has_aiosmtpd",
            "tests/standard-clients/.venv/bin/aiosmtpd",
        ),
        // bandit, semgrep and detect-secrets (tests/engines/.venv, requirements.txt).
        ("rampart_has_engines", "tests/engines/.venv/bin/semgrep"),
        // checkov (tests/engines/.venv-checkov, checkov-requirements.txt).
        (
            "rampart_has_checkov",
            "tests/engines/.venv-checkov/bin/checkov",
        ),
    ];
    const SERVERS: [(&str, &str); 3] = [
        ("rampart_test_postgres", "RAMPART_TEST_DATABASE_URL"),
        ("rampart_test_redis", "RAMPART_TEST_REDIS_URL"),
        ("rampart_test_s3", "RAMPART_TEST_S3_ENDPOINT"),
    ];
    println!("cargo:rerun-if-env-changed=CI");
    let ci = env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    for (cfg, path) in FILES {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        let path = Path::new(path);
        // Watch the path, or while it is absent its nearest existing parent below the
        // checkout's parent (a missing watched path would re-run this on every build).
        let watched = path
            .ancestors()
            .filter(|p| !p.as_os_str().is_empty() && *p != Path::new("..") && *p != Path::new("/"))
            .find(|p| p.exists());
        if let Some(watched) = watched {
            println!("cargo:rerun-if-changed={}", watched.display());
        }
        if path.exists() || ci {
            println!("cargo:rustc-cfg={cfg}");
        }
    }
    for (cfg, var) in SERVERS {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        println!("cargo:rerun-if-env-changed={var}");
        if env::var_os(var).is_some_and(|v| !v.is_empty()) {
            println!("cargo:rustc-cfg={cfg}");
        }
    }
}
