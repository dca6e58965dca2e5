//! Fetches the pinned GraphiQL and React builds (src/http/playground/package*.json) with
//! `npm ci` into OUT_DIR, once per target directory, so that `src/http/playground.rs` can embed
//! them with `include_bytes!`. Nothing from node_modules is ever committed or served from a CDN.

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
