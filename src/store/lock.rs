//! One easel per data folder: a lock file holding the owner's pid, so a second process gets a
//! clear message instead of fighting over the database.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// How the refusal starts when another easel holds the folder.
pub const HELD: &str = "another easel is using";

/// Held for as long as the process uses the data folder; released when dropped (or when the
/// process dies: the operating system drops the lock with the file descriptor).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    pub path: PathBuf,
}

impl DataDirLock {
    pub fn acquire(data_dir: &Path) -> Result<DataDirLock, String> {
        let path = data_dir.join("easel.lock");
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options
            .open(&path)
            .map_err(|e| super::files::describe_io_error("open the lock file", &path, &e))?;
        // A lock file made by an older easel may be open to others.
        let _ = super::files::make_private(&path, false);
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(held(&mut file, data_dir)),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(super::files::describe_io_error("lock", &path, &e));
            }
        }
        let _ = file.set_len(0);
        let _ = file.seek(SeekFrom::Start(0));
        let _ = write!(file, "{}", std::process::id());
        let _ = file.flush();
        Ok(DataDirLock { _file: file, path })
    }
}

impl DataDirLock {
    /// For reading a folder that cannot be written: a shared lock on the lock file if there is
    /// one (so a running easel, which holds it exclusively, is still noticed); none otherwise.
    pub fn acquire_shared(data_dir: &Path) -> Result<Option<DataDirLock>, String> {
        let path = data_dir.join("easel.lock");
        let Ok(mut file) = File::open(&path) else {
            return Ok(None);
        };
        match file.try_lock_shared() {
            Ok(()) => Ok(Some(DataDirLock { _file: file, path })),
            Err(std::fs::TryLockError::WouldBlock) => Err(held(&mut file, data_dir)),
            Err(std::fs::TryLockError::Error(_)) => Ok(None),
        }
    }
}

/// What to say when another process holds the lock: who, from the pid it wrote.
fn held(file: &mut File, data_dir: &Path) -> String {
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    let pid = text
        .trim()
        .parse::<u32>()
        .map(|p| format!(", pid {p}"))
        .unwrap_or_default();
    format!(
        "another easel is using {}{pid}; close it first — if it is the background service, `easel service stop` (or run without EASEL_SERVICE=off to share it) — or set EASEL_DATA_DIR to use another folder",
        data_dir.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_with_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        let e = DataDirLock::acquire(dir.path()).unwrap_err();
        assert!(e.contains("another easel is using"), "{e}");
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        drop(first);
        DataDirLock::acquire(dir.path()).unwrap();
    }
}
