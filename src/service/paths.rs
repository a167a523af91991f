//! Where a data folder's service socket lives: `$XDG_RUNTIME_DIR/easel/<name>.sock`, or the data
//! folder itself when there is no runtime folder. The name is a short hash of the data folder's
//! canonical path, so one folder reached by two spellings (a symlink, `..`) gets one service.

use super::{ServiceError, my_uid};
use sha2::{Digest, Sha256};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The longest socket path Linux accepts (`sun_path` is 108 bytes with its terminating NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// The socket's file name for a canonical data folder path: 16 hex digits of its SHA-256.
pub fn socket_name(canonical_data_dir: &Path) -> String {
    let digest = Sha256::digest(canonical_data_dir.as_os_str().as_encoded_bytes());
    format!("{}.sock", hex::encode(&digest[..8]))
}

/// The socket path for `data_dir`, using `$XDG_RUNTIME_DIR` when it names an absolute folder.
pub fn socket_path(data_dir: &Path) -> Result<PathBuf, ServiceError> {
    let runtime = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    socket_path_in(runtime.as_deref(), data_dir)
}

/// The socket path for `data_dir` under `runtime_dir` (its `easel` subfolder), or in the data
/// folder when `runtime_dir` is `None` or not a folder. `data_dir` must exist.
pub fn socket_path_in(
    runtime_dir: Option<&Path>,
    data_dir: &Path,
) -> Result<PathBuf, ServiceError> {
    let canonical = data_dir
        .canonicalize()
        .map_err(|source| ServiceError::DataFolder {
            path: data_dir.to_path_buf(),
            source,
        })?;
    let name = socket_name(&canonical);
    let folder = match runtime_dir {
        Some(r) if r.is_dir() => r.join("easel"),
        _ => canonical,
    };
    let path = folder.join(name);
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(ServiceError::PathTooLong {
            path,
            len,
            max: MAX_SOCKET_PATH,
        });
    }
    Ok(path)
}

/// Make the socket's folder exist, be ours and be private (0700). A folder of another user is
/// refused rather than used: whoever owns it could swap the socket.
pub fn prepare_socket_dir(socket: &Path) -> Result<(), ServiceError> {
    let Some(dir) = socket.parent() else {
        return Err(ServiceError::Io {
            what: "folder",
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "socket path has no folder",
            ),
        });
    };
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(source) => {
            return Err(ServiceError::Io {
                what: "folder creation",
                source,
            });
        }
    }
    let meta = std::fs::symlink_metadata(dir).map_err(ServiceError::io("folder"))?;
    let me = my_uid();
    if !meta.is_dir() || meta.uid() != me {
        return Err(ServiceError::FolderNotOwned {
            path: dir.to_path_buf(),
            owner: meta.uid(),
            me,
        });
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(ServiceError::io("folder permissions"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_folder_two_spellings_one_socket() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let run = root.path().join("run");
        std::fs::create_dir(&run).unwrap();
        let a = socket_path_in(Some(&run), &data).unwrap();
        let b = socket_path_in(Some(&run), &data.join("..").join("data")).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.parent().unwrap(), run.join("easel"));
        let other = root.path().join("other");
        std::fs::create_dir(&other).unwrap();
        assert_ne!(a, socket_path_in(Some(&run), &other).unwrap());
    }

    #[test]
    fn without_runtime_folder_the_socket_is_in_the_data_folder() {
        let root = tempfile::tempdir().unwrap();
        let p = socket_path_in(None, root.path()).unwrap();
        assert_eq!(p.parent().unwrap(), root.path().canonicalize().unwrap());
        let missing = root.path().join("nope");
        let p = socket_path_in(Some(&missing), root.path()).unwrap();
        assert_eq!(p.parent().unwrap(), root.path().canonicalize().unwrap());
    }

    #[test]
    fn too_long_a_path_is_refused_with_advice() {
        let root = tempfile::tempdir().unwrap();
        let mut deep = root.path().to_path_buf();
        for _ in 0..6 {
            deep = deep.join("a-rather-long-folder-name");
        }
        std::fs::create_dir_all(&deep).unwrap();
        let err = socket_path_in(None, &deep).unwrap_err();
        assert!(err.to_string().contains("XDG_RUNTIME_DIR"), "{err}");
    }

    #[test]
    fn the_folder_is_made_private() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("easel");
        prepare_socket_dir(&dir.join("x.sock")).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        prepare_socket_dir(&dir.join("x.sock")).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
