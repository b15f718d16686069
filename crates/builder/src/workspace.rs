//! Per-build workspaces under one root, and artifact paths that cannot leave them.

use std::io;
use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("invalid build id {id:?}: {reason}")]
    InvalidBuildId { id: String, reason: &'static str },
    #[error("artifact path {path:?} refused: {reason}")]
    PathRefused { path: String, reason: &'static str },
    #[error("artifact path {path:?} not found in the workspace")]
    NotFound { path: String },
    #[error("workspace i/o error at {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> WorkspaceError + '_ {
    move |source| WorkspaceError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Checks that `dir` is a real directory named by its real path: absolute, no
/// `..`, no symlink anywhere along it. Build directories are made under the
/// canonical workspace root, so a working directory that fails this passes
/// through something the checkout planted (a `data -> ../../..` link) and
/// would hand the server's own files to a build command, a layer or Jenkins.
pub fn real_dir(dir: &Path) -> Result<PathBuf, WorkspaceError> {
    let real = dir.canonicalize().map_err(io_err(dir))?;
    if real != dir {
        return Err(WorkspaceError::PathRefused {
            path: dir.display().to_string(),
            reason:
                "passes through a symlink or '..'; a working directory must be a real directory inside the workspace",
        });
    }
    if !real.is_dir() {
        return Err(WorkspaceError::Io {
            path: real,
            source: io::Error::other("not a directory"),
        });
    }
    Ok(real)
}

/// The directory under which every build gets its own workspace.
#[derive(Debug, Clone)]
pub struct WorkspaceRoot {
    root: PathBuf,
}

const MAX_ID_LEN: usize = 128;

fn validate_build_id(id: &str) -> Result<(), WorkspaceError> {
    let refuse = |reason| {
        Err(WorkspaceError::InvalidBuildId {
            id: id.to_owned(),
            reason,
        })
    };
    if id.is_empty() {
        return refuse("empty");
    }
    if id.len() > MAX_ID_LEN {
        return refuse("longer than 128 characters");
    }
    if id.starts_with('.') {
        return refuse("starts with a dot");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return refuse("only ASCII letters, digits, '-', '_' and '.' are allowed");
    }
    Ok(())
}

impl WorkspaceRoot {
    /// Create the root if needed. The root is canonicalized once, so later prefix checks
    /// compare real paths.
    pub fn new(root: impl AsRef<Path>) -> Result<Self, WorkspaceError> {
        let root = root.as_ref();
        std::fs::create_dir_all(root).map_err(io_err(root))?;
        let root = root.canonicalize().map_err(io_err(root))?;
        Ok(Self { root })
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// A fresh, empty workspace for `build_id`: anything left at that place by an earlier
    /// attempt is removed first.
    pub fn create(&self, build_id: &str) -> Result<Workspace, WorkspaceError> {
        validate_build_id(build_id)?;
        let dir = self.root.join(build_id);
        debug_assert_eq!(dir.parent(), Some(self.root.as_path()));
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&dir).map_err(io_err(&dir))?,
            Ok(_) => std::fs::remove_file(&dir).map_err(io_err(&dir))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&dir)(e)),
        }
        std::fs::create_dir(&dir).map_err(io_err(&dir))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(io_err(&dir))?;
        }
        Ok(Workspace { dir })
    }

    /// The workspace of `build_id` if it exists.
    pub fn open(&self, build_id: &str) -> Result<Workspace, WorkspaceError> {
        validate_build_id(build_id)?;
        let dir = self.root.join(build_id);
        if !dir.is_dir() {
            return Err(WorkspaceError::Io {
                path: dir,
                source: io::ErrorKind::NotFound.into(),
            });
        }
        Ok(Workspace { dir })
    }

    /// Remove the workspace of `build_id` (no error if it is already gone).
    pub fn remove(&self, build_id: &str) -> Result<(), WorkspaceError> {
        validate_build_id(build_id)?;
        let dir = self.root.join(build_id);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(&dir)(e)),
            _ => Ok(()),
        }
    }
}

/// One build's workspace directory.
#[derive(Debug, Clone)]
pub struct Workspace {
    dir: PathBuf,
}

impl Workspace {
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Resolve an artifact path given relative to the workspace (as written in the
    /// pipeline). Refuses absolute paths, `..`, and anything (symlinks included) whose real
    /// location is outside the workspace. The artifact must exist.
    pub fn resolve_artifact(&self, rel: &str) -> Result<PathBuf, WorkspaceError> {
        let refuse = |reason| {
            Err(WorkspaceError::PathRefused {
                path: rel.to_owned(),
                reason,
            })
        };
        if rel.is_empty() {
            return refuse("empty");
        }
        if rel.contains('\0') {
            return refuse("contains a NUL byte");
        }
        let p = Path::new(rel);
        for c in p.components() {
            match c {
                Component::Normal(_) | Component::CurDir => {}
                Component::ParentDir => return refuse("contains '..'"),
                Component::RootDir | Component::Prefix(_) => return refuse("absolute paths are not allowed"),
            }
        }
        let joined = self.dir.join(p);
        let real = match joined.canonicalize() {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // A dangling symlink also lands here; either way there is nothing to use.
                return Err(WorkspaceError::NotFound { path: rel.to_owned() });
            }
            Err(e) => return Err(io_err(&joined)(e)),
        };
        let base = self.dir.canonicalize().map_err(io_err(&self.dir))?;
        if real == base {
            return refuse("names the workspace itself");
        }
        if !real.starts_with(&base) {
            return refuse("resolves outside the workspace");
        }
        Ok(real)
    }
}
