//! Files only the service's own user can read. The data directory holds the embedded database,
//! the JWT signing secret and the raw reports (which carry whatever secrets a scanner found), so
//! every directory Rampart makes there is `0700` and every file `0600`. The mode is set on the
//! open handle or path after creation, so it does not depend on the process's umask.

use std::io;
use std::path::Path;

use anyhow::Context as _;

use crate::config::Config;

/// Mode of every directory Rampart creates under the data directory.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file Rampart creates under the data directory.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and missing parents) as private directories; `dir` itself ends up exactly
/// [`DIR_MODE`] even when it existed already.
///
/// # Errors
/// When a directory cannot be created or its mode set.
pub async fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = tokio::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(DIR_MODE);
    builder.create(dir).await?;
    set_mode(dir, DIR_MODE).await
}

/// Creates (or truncates) `path` for writing, private to this user.
///
/// # Errors
/// When the file cannot be opened or its mode set.
pub async fn create_file(path: &Path) -> io::Result<tokio::fs::File> {
    open_private(path, false).await
}

/// Creates `path` for writing, private to this user; `AlreadyExists` when it exists.
///
/// # Errors
/// When the file exists or cannot be created.
pub async fn create_new_file(path: &Path) -> io::Result<tokio::fs::File> {
    open_private(path, true).await
}

async fn open_private(path: &Path, new: bool) -> io::Result<tokio::fs::File> {
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true);
    if new {
        options.create_new(true);
    } else {
        options.create(true).truncate(true);
    }
    #[cfg(unix)]
    options.mode(FILE_MODE);
    let file = options.open(path).await?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
            .await?;
    }
    Ok(file)
}

/// Narrows an existing file to [`FILE_MODE`]; nothing when it does not exist.
///
/// # Errors
/// When the mode cannot be set.
pub async fn restrict_file(path: &Path) -> io::Result<()> {
    match set_mode(path, FILE_MODE).await {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(unix)]
async fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    tokio::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).await
}

#[cfg(not(unix))]
async fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}

/// Makes the data directory private before anything is written into it: the directory `0700`
/// when Rampart creates it (an existing one keeps its mode), and the embedded database `0600` — created empty here when it is new, because SQLite gives
/// its `-wal` and `-shm` files the database file's mode. Files an older version left readable
/// (database, its `-wal`/`-shm`, `jwt-secret`) are narrowed to `0600`.
///
/// # Errors
/// When the directory or a file cannot be created or narrowed.
pub async fn prepare_data_dir(config: &Config) -> anyhow::Result<()> {
    let dir = &config.data_dir;
    // An existing directory keeps its mode: it may be one the operator chose and shares. What
    // Rampart puts in it is private all the same.
    if tokio::fs::metadata(dir).await.is_err() {
        create_dir(dir)
            .await
            .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    }
    let mut private = vec![dir.join(crate::secrets::JWT_SECRET_FILE)];
    if config.database_url.is_none() {
        let db = config.embedded_database_path();
        match create_new_file(&db).await {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(e).with_context(|| format!("cannot create {}", db.display()));
            }
        }
        for suffix in ["", "-wal", "-shm"] {
            let mut name = db.clone().into_os_string();
            name.push(suffix);
            private.push(name.into());
        }
    }
    for file in private {
        restrict_file(&file)
            .await
            .with_context(|| format!("cannot make {} private", file.display()))?;
    }
    Ok(())
}
