//! Files readable by their owner only: what the node and the `adi` command write (a database and
//! its journal, keys, configurations, exported bundles) is nobody else's to read.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::Context;

/// Makes every file this process creates from now on readable by its owner only (mode 0600, and
/// 0700 for folders): the database and its journal, keys, configurations, exported bundles.
pub fn keep_private() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Narrows an existing file, made before [`keep_private`] was in force, to its owner (mode
/// 0600); a file that does not exist is left alone.
pub fn make_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match fs::metadata(path) {
        Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
            fs::set_permissions(path, fs::Permissions::from_mode(meta.permissions().mode() & 0o700))
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes a file, creating it with mode 0600 (owner read and write only).
pub fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path).with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(contents)?;
    f.sync_all()?;
    Ok(())
}
