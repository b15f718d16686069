//! Where downloaded artifacts may be written: only inside the step's workdir.
//!
//! Jenkins reports each archived file with a `relativePath` chosen by whoever configured
//! the job, so Prism treats it as untrusted: a path that is absolute, climbs with `..`,
//! or would pass through a symlink leading out of the workdir is refused.

use std::io;
use std::path::{Component, Path, PathBuf};

use super::JenkinsError;

/// Lexical checks, done for every artifact before any is downloaded so that a bad list
/// writes nothing at all.
pub(crate) fn check_relative_path(rel: &str) -> Result<(), JenkinsError> {
    let refuse = |reason| {
        Err(JenkinsError::ArtifactPath {
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
    // Jenkins on Windows agents reports paths with '/', but a '\' could still mean a
    // separator to someone: refuse rather than guess.
    if rel.contains('\\') {
        return refuse("contains a backslash");
    }
    let mut normal = 0;
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(_) => normal += 1,
            Component::CurDir => {}
            Component::ParentDir => return refuse("contains '..'"),
            Component::RootDir | Component::Prefix(_) => return refuse("absolute paths are not allowed"),
        }
    }
    if normal == 0 || rel.ends_with('/') {
        return refuse("does not name a file");
    }
    Ok(())
}

/// The step's working directory as the base artifacts are written under,
/// refused when it is reached through a symlink or `..` (a checkout that
/// plants `data -> ../../..` must not get Jenkins' files written into
/// Prism's own directory).
pub(crate) fn confined_workdir(workdir: &Path) -> Result<PathBuf, JenkinsError> {
    match crate::workspace::real_dir(workdir) {
        Ok(real) => Ok(real),
        Err(crate::workspace::WorkspaceError::Io { path, source }) => Err(JenkinsError::ArtifactIo { path, source }),
        Err(_) => Err(JenkinsError::ArtifactPath {
            path: workdir.display().to_string(),
            reason: "the working directory passes through a symlink; artifacts are written only inside the build's workspace",
        }),
    }
}

/// Create the directories leading to `rel` under `base` (the canonical workdir), one at a
/// time, checking that each existing one really lies inside `base`: `create_dir_all`
/// would follow a symlink planted in the workdir and create directories elsewhere.
/// Returns the directory the file goes into and the file's full path.
pub(crate) fn prepare_destination(base: &Path, rel: &str) -> Result<(PathBuf, PathBuf), JenkinsError> {
    check_relative_path(rel)?;
    let rel_path = Path::new(rel);
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| JenkinsError::ArtifactIo { path, source }
    };
    let mut dir = base.to_owned();
    if let Some(parent) = rel_path.parent() {
        for c in parent.components() {
            let Component::Normal(name) = c else { continue };
            let next = dir.join(name);
            match std::fs::symlink_metadata(&next) {
                Ok(_) => {
                    let real = next.canonicalize().map_err(io_err(&next))?;
                    if !real.starts_with(base) {
                        return Err(JenkinsError::ArtifactPath {
                            path: rel.to_owned(),
                            reason: "would be written outside the workdir (through a symlink)",
                        });
                    }
                    if !real.is_dir() {
                        return Err(JenkinsError::ArtifactIo {
                            path: next,
                            source: io::Error::other("exists and is not a directory"),
                        });
                    }
                    dir = real;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    std::fs::create_dir(&next).map_err(io_err(&next))?;
                    dir = next;
                }
                Err(e) => return Err(io_err(&next)(e)),
            }
        }
    }
    let file_name = rel_path.file_name().ok_or_else(|| JenkinsError::ArtifactPath {
        path: rel.to_owned(),
        reason: "does not name a file",
    })?;
    let dest = dir.join(file_name);
    Ok((dir, dest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_checks() {
        for ok in ["a", "dir/a.jar", "./a", "a/./b"] {
            assert!(check_relative_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/..",
            "a\\b",
            "a/",
            ".",
            "a\0b",
        ] {
            assert!(check_relative_path(bad).is_err(), "{bad:?}");
        }
    }

    /// Issue 11 item 3: a workdir that is a symlink out of the workspace
    /// (`data -> ../../..`) is refused as the artifacts' base; before, its
    /// canonical target (Prism's data directory) was used.
    #[test]
    fn symlinked_workdir_refused_as_the_artifact_base() {
        let ws = tempfile::tempdir().unwrap();
        let base = ws.path().canonicalize().unwrap();
        let src = base.join("builds/b1/src");
        std::fs::create_dir_all(&src).unwrap();
        std::os::unix::fs::symlink("../../..", src.join("data")).unwrap();
        let err = confined_workdir(&src.join("data")).unwrap_err();
        assert!(err.to_string().contains("passes through a symlink"), "{err}");
        let err = confined_workdir(&src.join("../src")).unwrap_err();
        assert!(err.to_string().contains("passes through a symlink"), "{err}");
        std::fs::create_dir(src.join("app")).unwrap();
        assert_eq!(confined_workdir(&src.join("app")).unwrap(), src.join("app"));
    }

    #[test]
    fn symlink_out_of_workdir_refused() {
        let outside = tempfile::tempdir().unwrap();
        let ws = tempfile::tempdir().unwrap();
        let base = ws.path().canonicalize().unwrap();
        std::os::unix::fs::symlink(outside.path(), base.join("out")).unwrap();
        let err = prepare_destination(&base, "out/sub/file").unwrap_err();
        assert!(err.to_string().contains("outside the workdir"), "{err}");
        assert!(!outside.path().join("sub").exists());

        let (dir, dest) = prepare_destination(&base, "a/b/c.txt").unwrap();
        assert_eq!(dir, base.join("a/b"));
        assert_eq!(dest, base.join("a/b/c.txt"));
        assert!(dir.is_dir());
    }
}
