//! Where the code an engine scans comes from, and how it is put into the run's scratch
//! directory:
//!
//! - an uploaded archive (`.tar.gz` or `.zip`), checked at upload and again at extraction: no
//!   absolute paths or `..`, no links pointing out of the tree (links inside are not
//!   created: engines read the files themselves), no devices, and bounded entries and total
//!   expansion (archive bombs);
//! - a directory under one of the configured server-side roots, copied under the same bounds
//!   (symbolic links are not followed, so nothing outside the root is read);
//! - a git repository, cloned shallowly (`--depth 1`), its links checked out as plain files.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Config;

/// What the job is told about its source (kept in the job's payload).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourceSpec {
    /// An uploaded archive, stored in the object store under `key` until the scan ends.
    Archive { key: String, format: ArchiveFormat },
    /// A directory on the server (canonical, under an allowed root).
    Path { path: PathBuf },
    /// A git repository: a URL, or a local repository's canonical path.
    Git {
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
}

impl SourceSpec {
    /// `archive`, `path` or `git`, for messages and audit.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Archive { .. } => "archive",
            Self::Path { .. } => "path",
            Self::Git { .. } => "git",
        }
    }
}

/// Archive formats, told from their first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArchiveFormat {
    TarGz,
    Zip,
}

impl ArchiveFormat {
    /// The format of an archive starting with `head`.
    pub fn sniff(head: &[u8]) -> Option<Self> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Some(Self::TarGz)
        } else if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
            Some(Self::Zip)
        } else {
            None
        }
    }
}

/// Why a source cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The client's fault (an unsafe or oversized archive, a path outside the roots): 400.
    #[error("{0}")]
    Rejected(String),
    /// Ours, or the machine's.
    #[error(transparent)]
    Io(#[from] io::Error),
}

fn rejected(message: impl Into<String>) -> SourceError {
    SourceError::Rejected(message.into())
}

/// How much an archive or a copied directory may hold.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_entries: u64,
}

impl Limits {
    pub fn of(config: &Config) -> Self {
        Self {
            max_bytes: config.engine_max_expanded_bytes,
            max_entries: config.engine_max_archive_entries,
        }
    }
}

/// What an extraction or copy wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub files: u64,
    pub bytes: u64,
}

/// Counts entries and bytes against the limits.
struct Budget {
    limits: Limits,
    written: Written,
    entries: u64,
}

impl Budget {
    fn new(limits: Limits) -> Self {
        Self {
            limits,
            written: Written::default(),
            entries: 0,
        }
    }

    fn entry(&mut self) -> Result<(), SourceError> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(rejected(format!(
                "the archive has more than {} entries",
                self.limits.max_entries
            )));
        }
        Ok(())
    }

    /// Copies `from` to `to` (or only counts it), failing past the total.
    fn copy(&mut self, from: &mut dyn Read, to: Option<&mut dyn Write>) -> Result<(), SourceError> {
        let left = self.limits.max_bytes - self.written.bytes;
        let mut limited = from.take(left + 1);
        let n = match to {
            Some(to) => io::copy(&mut limited, to)?,
            None => io::copy(&mut limited, &mut io::sink())?,
        };
        if n > left {
            return Err(rejected(format!(
                "the archive expands to more than {} bytes",
                self.limits.max_bytes
            )));
        }
        self.written.bytes += n;
        self.written.files += 1;
        Ok(())
    }
}

/// The relative path an entry name stands for, or why it is unsafe.
fn safe_relative(name: &str) -> Result<Option<PathBuf>, SourceError> {
    let unsafe_name = || rejected(format!("unsafe path in the archive: {name:?}"));
    if name.contains('\0') || name.contains('\\') {
        return Err(unsafe_name());
    }
    let mut out = PathBuf::new();
    for component in Path::new(name).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(unsafe_name())
            }
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// Refuses a link at `at` (relative) whose target leaves the tree; a link that stays inside
/// is fine (and is not created).
fn check_link(at: &Path, target: &Path) -> Result<(), SourceError> {
    let escapes = || {
        rejected(format!(
            "a link in the archive points outside it: {} -> {}",
            at.display(),
            target.display()
        ))
    };
    let mut depth: i64 = at.components().count() as i64 - 1;
    for component in target.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return Err(escapes());
                }
            }
            Component::RootDir | Component::Prefix(_) => return Err(escapes()),
        }
    }
    Ok(())
}

/// Writes a regular file at `dest/rel`, creating its directories (never through a link: none
/// is ever created here).
fn create_file(dest: &Path, rel: &Path) -> io::Result<fs::File> {
    let path = dest.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

/// Checks an archive, and extracts it into `dest` when given.
///
/// # Errors
/// [`SourceError::Rejected`] for an unsafe, broken or oversized archive.
pub fn extract(
    archive: &Path,
    format: ArchiveFormat,
    dest: Option<&Path>,
    limits: Limits,
) -> Result<Written, SourceError> {
    let mut budget = Budget::new(limits);
    match format {
        ArchiveFormat::TarGz => extract_tar(archive, dest, &mut budget)?,
        ArchiveFormat::Zip => extract_zip(archive, dest, &mut budget)?,
    }
    Ok(budget.written)
}

fn broken(err: impl std::fmt::Display) -> SourceError {
    rejected(format!("the archive cannot be read: {err}"))
}

fn extract_tar(
    archive: &Path,
    dest: Option<&Path>,
    budget: &mut Budget,
) -> Result<(), SourceError> {
    let file = fs::File::open(archive)?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(io::BufReader::new(file)));
    for entry in tar.entries().map_err(broken)? {
        let mut entry = entry.map_err(broken)?;
        budget.entry()?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(rel) = safe_relative(&name)? else {
            continue;
        };
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name()
                .map_err(broken)?
                .ok_or_else(|| broken("a link without a target"))?;
            if kind.is_hard_link() {
                // A hard link names another entry of the archive from its root.
                safe_relative(&target.to_string_lossy())?;
            } else {
                check_link(&rel, &target)?;
            }
            continue;
        }
        if kind.is_dir() {
            if let Some(dest) = dest {
                fs::create_dir_all(dest.join(&rel))?;
            }
            continue;
        }
        if kind.is_file() || kind == tar::EntryType::GNUSparse || kind.as_byte() == 0 {
            match dest {
                Some(dest) => {
                    let mut out = create_file(dest, &rel)?;
                    budget.copy(&mut entry, Some(&mut out))?;
                }
                None => budget.copy(&mut entry, None)?,
            }
            continue;
        }
        if kind.is_pax_global_extensions()
            || kind.is_pax_local_extensions()
            || kind.is_gnu_longname()
            || kind.is_gnu_longlink()
        {
            continue;
        }
        return Err(rejected(format!(
            "the archive holds a special file (devices, FIFOs are not allowed): {name:?}"
        )));
    }
    Ok(())
}

fn extract_zip(
    archive: &Path,
    dest: Option<&Path>,
    budget: &mut Budget,
) -> Result<(), SourceError> {
    let file = fs::File::open(archive)?;
    let mut zip = zip::ZipArchive::new(io::BufReader::new(file)).map_err(broken)?;
    for i in 0..zip.len() {
        budget.entry()?;
        let mut entry = zip.by_index(i).map_err(broken)?;
        let name = entry.name().map_err(broken)?.into_owned();
        let Some(rel) = safe_relative(&name)? else {
            continue;
        };
        if entry.is_symlink() {
            let mut target = String::new();
            (&mut entry)
                .take(4096)
                .read_to_string(&mut target)
                .map_err(broken)?;
            check_link(&rel, Path::new(&target))?;
            continue;
        }
        if entry.is_dir() {
            if let Some(dest) = dest {
                fs::create_dir_all(dest.join(&rel))?;
            }
            continue;
        }
        match dest {
            Some(dest) => {
                let mut out = create_file(dest, &rel)?;
                budget.copy(&mut entry, Some(&mut out)).map_err(zip_read)?;
            }
            None => budget.copy(&mut entry, None).map_err(zip_read)?,
        }
    }
    Ok(())
}

/// A read error inside a zip entry (bad CRC, corrupt data) is the archive's fault.
fn zip_read(err: SourceError) -> SourceError {
    match err {
        SourceError::Io(err)
            if err.kind() == io::ErrorKind::InvalidData
                || err.kind() == io::ErrorKind::UnexpectedEof
                || err.kind() == io::ErrorKind::Other =>
        {
            broken(err)
        }
        other => other,
    }
}

/// The canonical directory `requested` names, if it is one of `roots` or under one.
///
/// # Errors
/// [`SourceError::Rejected`] when no root is configured, the directory does not exist, or
/// it lies outside every root (links resolved first).
pub fn allowed_dir(requested: &str, roots: &[PathBuf]) -> Result<PathBuf, SourceError> {
    if roots.is_empty() {
        return Err(rejected(
            "server-side sources are not enabled: RAMPART_ENGINE_SOURCE_ROOTS names no directory",
        ));
    }
    let requested = Path::new(requested);
    if !requested.is_absolute() {
        return Err(rejected("the path must be absolute"));
    }
    let outside = || rejected("the path is not a directory under an allowed source root");
    let canonical = fs::canonicalize(requested).map_err(|_| outside())?;
    if !canonical.is_dir() {
        return Err(outside());
    }
    let inside = roots
        .iter()
        .any(|root| fs::canonicalize(root).is_ok_and(|root| canonical.starts_with(root)));
    if inside {
        Ok(canonical)
    } else {
        Err(outside())
    }
}

/// Copies a directory tree into `dest` without following links (they are left out) and
/// without `.git`, under the limits.
///
/// # Errors
/// [`SourceError::Rejected`] past the limits.
pub fn copy_tree(from: &Path, dest: &Path, limits: Limits) -> Result<Written, SourceError> {
    let mut budget = Budget::new(limits);
    copy_dir(from, dest, &mut budget)?;
    Ok(budget.written)
}

fn copy_dir(from: &Path, dest: &Path, budget: &mut Budget) -> Result<(), SourceError> {
    fs::create_dir_all(dest)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if entry.file_name() == ".git" {
            continue;
        }
        budget.entry().map_err(|_| {
            rejected(format!(
                "the directory has more than {} entries",
                budget.limits.max_entries
            ))
        })?;
        let to = dest.join(entry.file_name());
        if kind.is_dir() {
            copy_dir(&entry.path(), &to, budget)?;
        } else if kind.is_file() {
            let mut input = fs::File::open(entry.path())?;
            let mut out = fs::File::create(&to)?;
            budget
                .copy(&mut input, Some(&mut out))
                .map_err(|e| match e {
                    SourceError::Rejected(_) => rejected(format!(
                        "the directory holds more than {} bytes",
                        budget.limits.max_bytes
                    )),
                    other => other,
                })?;
        }
        // Links, sockets, devices: left out.
    }
    Ok(())
}

/// Checks a git source: a URL of an allowed scheme, or (`local`) an absolute path. Returns
/// whether it is local (a server-side path).
///
/// # Errors
/// [`SourceError::Rejected`] for anything else (`ext::`, scp-like `host:path`, options).
pub fn check_git_url(url: &str) -> Result<bool, SourceError> {
    let url = url.trim();
    if url.starts_with('-') || url.contains(['\n', '\r', '\0']) {
        return Err(rejected("not a git repository URL"));
    }
    if url.starts_with('/') {
        return Ok(true);
    }
    if let Some(path) = url.strip_prefix("file://") {
        return path
            .starts_with('/')
            .then_some(true)
            .ok_or_else(|| rejected("a file:// URL needs an absolute path"));
    }
    if ["https://", "http://", "ssh://", "git://"]
        .iter()
        .any(|scheme| url.starts_with(scheme))
    {
        return Ok(false);
    }
    Err(rejected(
        "a git source is an https://, http://, ssh:// or git:// URL, or an absolute path",
    ))
}

/// A git reference (branch or tag) that cannot be taken for an option.
///
/// # Errors
/// [`SourceError::Rejected`] for anything else.
pub fn check_git_ref(reference: &str) -> Result<(), SourceError> {
    let ok = !reference.is_empty()
        && reference.len() <= 200
        && !reference.starts_with('-')
        && !reference.contains("..")
        && reference
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c));
    ok.then_some(())
        .ok_or_else(|| rejected("not a branch or tag name"))
}

/// The arguments of a shallow clone of `url` into `dest` (no shell: a vector).
pub fn git_clone_args(url: &str, reference: Option<&str>, dest: &Path) -> Vec<std::ffi::OsString> {
    let url = if url.starts_with('/') {
        // `--depth` is ignored for plain local paths; a file:// URL honours it.
        format!("file://{url}")
    } else {
        url.to_string()
    };
    let mut args: Vec<std::ffi::OsString> = vec![
        "-c".into(),
        "core.symlinks=false".into(),
        "-c".into(),
        "protocol.allow=never".into(),
        "-c".into(),
        "protocol.https.allow=always".into(),
        "-c".into(),
        "protocol.http.allow=always".into(),
        "-c".into(),
        "protocol.ssh.allow=always".into(),
        "-c".into(),
        "protocol.git.allow=always".into(),
        "-c".into(),
        "protocol.file.allow=always".into(),
        "clone".into(),
        "--depth".into(),
        "1".into(),
        "--no-tags".into(),
        "--single-branch".into(),
    ];
    if let Some(reference) = reference {
        args.push("--branch".into());
        args.push(reference.into());
    }
    args.push("--".into());
    args.push(url.into());
    args.push(dest.as_os_str().to_owned());
    args
}

#[cfg(test)]
mod tests;
