//! The data directory: created owner-only (0700), and the embedded SQLite database file
//! created 0600 before SQLite opens it (SQLite gives its WAL and shared-memory files the
//! database file's mode), so keys' wrapped material and the audit trail are not world-readable.

use std::path::Path;

use crate::config::Settings;

/// Creates the data directory (0700) and, for the default SQLite database, its file (0600).
/// Existing paths keep their mode; a database readable by others is reported.
pub fn prepare(settings: &Settings) -> Result<(), String> {
    create_private_dir(&settings.data_dir)?;
    if let Some(path) = sqlite_path(&settings.database_url) {
        create_private_file(Path::new(path))?;
    }
    Ok(())
}

fn create_private_dir(dir: &Path) -> Result<(), String> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| format!("cannot create data directory `{}`: {e}", dir.display()))
}

fn create_private_file(path: &Path) -> Result<(), String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            #[cfg(unix)]
            if let Ok(meta) = std::fs::metadata(path) {
                use std::os::unix::fs::PermissionsExt as _;
                if meta.permissions().mode() & 0o077 != 0 {
                    tracing::warn!(path = %path.display(), "the database file is readable by others: chmod 600 it");
                }
            }
            Ok(())
        }
        Err(e) => Err(format!("cannot create database `{}`: {e}", path.display())),
    }
}

/// The file of a `sqlite://` URL (none for `:memory:` or another database).
fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://")?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && !path.contains(":memory:")).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::sqlite_path;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(sqlite_path("sqlite:///data/keyward.db?mode=rwc"), Some("/data/keyward.db"));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://k@h/db"), None);
    }
}
