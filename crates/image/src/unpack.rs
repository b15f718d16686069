//! Unpacks an image, pinned by digest, into a root filesystem on disk: how
//! the contained build runner gets its builder image. Each digest is
//! unpacked once into `<cache>/<hex>/rootfs` (written beside it and renamed
//! into place when complete, so a crash never leaves half an image in use).
//!
//! Layers are applied in order with OCI whiteouts (`.wh.NAME` removes NAME,
//! `.wh..wh..opq` empties a directory of what lower layers put there).
//! Nothing is written outside the root: paths with `..` or absolute links
//! that would be followed are refused, writes go through the tar crate's
//! `unpack_in` (which checks the real parent), and device nodes are skipped.
//! File owners are shifted by `id_shift`, so root inside the image is the
//! container's unprivileged root outside.

use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use flate2::read::MultiGzDecoder;

use crate::error::{ImageError, Result};
use crate::media::Manifest;
use crate::registry::RegistryClient;

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// Where `digest` is (or will be) unpacked under `cache`.
pub fn rootfs_path(cache: &Path, digest: &str) -> PathBuf {
    cache.join(digest.replace(':', "-")).join("rootfs")
}

/// Pulls `repository@digest` (an image manifest, not an index) and unpacks
/// it under `cache` unless already there; returns the root filesystem.
pub async fn unpack_image(
    client: &RegistryClient,
    repository: &str,
    digest: &str,
    cache: &Path,
    id_shift: u32,
) -> Result<PathBuf> {
    let root = rootfs_path(cache, digest);
    if root.join(".prism-complete").exists() {
        return Ok(root);
    }
    let reference = format!("{repository}@{digest}");
    let fetched = client
        .get_image_manifest(repository, digest, "linux", "amd64")
        .await?
        .ok_or_else(|| ImageError::BaseNotFound {
            reference: reference.clone(),
        })?;
    let manifest: Manifest = fetched.parse()?;
    let mut blobs = Vec::with_capacity(manifest.layers.len());
    for layer in &manifest.layers {
        blobs.push(client.get_blob(repository, &layer.digest).await?);
    }
    let parent = root.parent().expect("rootfs has a parent").to_path_buf();
    // Unique per unpack, not only per process: two builds of one server may
    // unpack the same digest at once; each writes its own copy, the first
    // rename wins and the other copy is dropped.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let staging = parent.with_extension(format!("partial-{}-{n}", std::process::id()));
    let work = staging.clone();
    tokio::task::spawn_blocking(move || -> Result<()> {
        let _ = fs::remove_dir_all(&work);
        let rootfs = work.join("rootfs");
        fs::create_dir_all(&rootfs).map_err(ImageError::io(format!("creating {}", rootfs.display())))?;
        for blob in &blobs {
            apply_layer(&rootfs, blob, id_shift)?;
        }
        std::os::unix::fs::lchown(&rootfs, Some(id_shift), Some(id_shift))
            .map_err(ImageError::io("owning the root"))?;
        fs::write(rootfs.join(".prism-complete"), b"").map_err(ImageError::io("marking the root complete"))?;
        Ok(())
    })
    .await
    .map_err(|e| ImageError::Io {
        context: "unpacking".into(),
        source: std::io::Error::other(e.to_string()),
    })??;
    if root.join(".prism-complete").exists() {
        // Another build unpacked the same digest meanwhile.
        let _ = fs::remove_dir_all(&staging);
        return Ok(root);
    }
    if parent.exists() && !root.join(".prism-complete").exists() {
        // What a crash left half-made (never renamed into place, but be sure).
        let _ = fs::remove_dir_all(&parent);
    }
    if let Err(e) = fs::rename(&staging, &parent) {
        // A concurrent unpack of the same digest renamed its copy first.
        let _ = fs::remove_dir_all(&staging);
        if root.join(".prism-complete").exists() {
            return Ok(root);
        }
        return Err(ImageError::io(format!("moving {} into place", parent.display()))(e));
    }
    Ok(root)
}

/// Applies one layer blob (gzip, zstd or plain tar) onto `root`.
pub fn apply_layer(root: &Path, blob: &[u8], id_shift: u32) -> Result<()> {
    let bad = |reason: String| ImageError::Rootfs {
        path: root.display().to_string(),
        reason,
    };
    let reader: Box<dyn Read> = if blob.starts_with(&[0x1f, 0x8b]) {
        Box::new(MultiGzDecoder::new(blob))
    } else if blob.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        // A zstd layer (its frames read one after another).
        Box::new(zstd::stream::read::Decoder::new(blob).map_err(|e| bad(format!("bad zstd layer: {e}")))?)
    } else {
        Box::new(blob)
    };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(true);
    for entry in archive.entries().map_err(|e| bad(format!("not a tar archive: {e}")))? {
        let mut entry = entry.map_err(|e| bad(format!("bad tar entry: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| bad(format!("bad entry path: {e}")))?
            .into_owned();
        let rel = clean(&path).ok_or_else(|| bad(format!("entry {} leaves the root", path.display())))?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let dir = rel.parent().unwrap_or(Path::new(""));
        if name == OPAQUE {
            let target = inside(root, dir)?;
            if let Ok(children) = fs::read_dir(&target) {
                for child in children.flatten() {
                    remove(&child.path());
                }
            }
            continue;
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT) {
            remove(&inside(root, &dir.join(hidden))?);
            continue;
        }
        let kind = entry.header().entry_type();
        if kind.is_block_special() || kind.is_character_special() {
            continue;
        }
        if kind.is_hard_link() {
            let target = entry
                .link_name()
                .map_err(|e| bad(format!("bad link: {e}")))?
                .ok_or_else(|| bad(format!("hard link {} has no target", rel.display())))?;
            clean(&target).ok_or_else(|| bad(format!("hard link {} points outside the root", rel.display())))?;
        }
        // A lower layer's file or link in the way of a directory is replaced.
        let dest = root.join(&rel);
        if kind.is_dir() {
            if let Ok(m) = fs::symlink_metadata(&dest) {
                if !m.is_dir() {
                    remove(&dest);
                }
            }
        } else if fs::symlink_metadata(&dest).map(|m| m.is_dir()).unwrap_or(false) {
            remove(&dest);
        }
        let uid = entry.header().uid().unwrap_or(0) as u32;
        let gid = entry.header().gid().unwrap_or(0) as u32;
        let unpacked = entry.unpack_in(root).map_err(|e| {
            // tar's error names the path; the reason (ENOSPC, EACCES ...) is its source.
            let mut why = String::new();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                why.push_str(&format!(": {s}"));
                source = s.source();
            }
            bad(format!("{}: {e}{why}", rel.display()))
        })?;
        if !unpacked {
            return Err(bad(format!("entry {} leaves the root", rel.display())));
        }
        std::os::unix::fs::lchown(
            &dest,
            Some(uid.saturating_add(id_shift)),
            Some(gid.saturating_add(id_shift)),
        )
        .map_err(ImageError::io(format!("owning {}", dest.display())))?;
    }
    Ok(())
}

/// The path relative to the root, without `.`; None when it climbs out.
fn clean(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// `root/rel`, refusing a parent directory that is a link (a whiteout must
/// not delete through a symlink planted by a lower layer).
fn inside(root: &Path, rel: &Path) -> Result<PathBuf> {
    let mut at = root.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for (i, c) in parts.iter().enumerate() {
        at.push(c);
        let last = i + 1 == parts.len();
        if !last
            && fs::symlink_metadata(&at)
                .map(|m| m.file_type().is_symlink())
                .unwrap_or(false)
        {
            return Err(ImageError::Rootfs {
                path: root.display().to_string(),
                reason: format!("{} goes through a symbolic link", rel.display()),
            });
        }
    }
    Ok(at)
}

fn remove(path: &Path) {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            let _ = fs::remove_dir_all(path);
        }
        Ok(_) => {
            let _ = fs::remove_file(path);
        }
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn tar(entries: &[(&str, Option<&str>, u32)]) -> Vec<u8> {
        // (path, content or None for a directory, uid)
        let mut b = tar::Builder::new(Vec::new());
        for (path, content, uid) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_uid(u64::from(*uid));
            h.set_gid(u64::from(*uid));
            h.set_mtime(0);
            match content {
                Some(c) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(0o644);
                    h.set_size(c.len() as u64);
                    b.append_data(&mut h, path, c.as_bytes()).unwrap();
                }
                None => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(0o755);
                    h.set_size(0);
                    b.append_data(&mut h, path, &[][..]).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    fn link(path: &str, target: &str) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        b.append_link(&mut h, path, target).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn layers_apply_in_order_with_whiteouts_and_shifted_owners() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("rootfs");
        fs::create_dir_all(&root).unwrap();
        let lower = tar(&[
            ("etc/", None, 0),
            ("etc/keep", Some("keep"), 0),
            ("etc/gone", Some("gone"), 0),
            ("opt/", None, 0),
            ("opt/old", Some("old"), 1000),
        ]);
        let upper = tar(&[
            ("etc/.wh.gone", Some(""), 0),
            ("opt/.wh..wh..opq", Some(""), 0),
            ("opt/new", Some("new"), 0),
        ]);
        apply_layer(&root, &lower, 100_000).unwrap();
        assert_eq!(fs::metadata(root.join("opt/old")).unwrap().uid(), 101_000);
        apply_layer(&root, &upper, 100_000).unwrap();
        assert_eq!(fs::read_to_string(root.join("etc/keep")).unwrap(), "keep");
        assert!(!root.join("etc/gone").exists());
        assert!(!root.join("etc/.wh.gone").exists());
        assert!(!root.join("opt/old").exists());
        assert_eq!(fs::read_to_string(root.join("opt/new")).unwrap(), "new");
        assert_eq!(fs::metadata(root.join("etc/keep")).unwrap().uid(), 100_000);
    }

    /// A zstd layer of two frames (as Prism writes large ones) and a gzip
    /// one unpack alike; bytes that are none of the three formats are refused.
    #[test]
    fn zstd_and_gzip_layers_apply_like_plain_tars() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("rootfs");
        fs::create_dir_all(&root).unwrap();
        let t = tar(&[
            ("a/", None, 0),
            ("a/one", Some("one"), 0),
            ("b/", None, 0),
            ("b/two", Some("two"), 0),
        ]);
        // One tar cut in two frames, concatenated: b/ is in the second.
        let cut = 3 * 512;
        let mut frames = zstd::bulk::compress(&t[..cut], 3).unwrap();
        frames.extend(zstd::bulk::compress(&t[cut..], 3).unwrap());
        apply_layer(&root, &frames, 0).unwrap();
        assert_eq!(fs::read_to_string(root.join("a/one")).unwrap(), "one");
        assert_eq!(fs::read_to_string(root.join("b/two")).unwrap(), "two");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar(&[("c", Some("three"), 0)])).unwrap();
        apply_layer(&root, &gz.finish().unwrap(), 0).unwrap();
        assert_eq!(fs::read_to_string(root.join("c")).unwrap(), "three");
        assert!(apply_layer(&root, &[0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0], 0).is_err());
    }

    #[test]
    fn nothing_is_written_outside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("rootfs");
        fs::create_dir_all(&root).unwrap();
        // A link to the outside, then a file written through it.
        apply_layer(&root, &link("escape", ".."), 0).unwrap();
        let through = tar(&[("escape/planted", Some("x"), 0)]);
        assert!(apply_layer(&root, &through, 0).is_err());
        assert!(!tmp.path().join("planted").exists());
        // A whiteout through the link must not delete outside either.
        fs::write(tmp.path().join("victim"), "v").unwrap();
        assert!(apply_layer(&root, &tar(&[("escape/.wh.victim", Some(""), 0)]), 0).is_err());
        assert!(tmp.path().join("victim").exists());
    }

    #[test]
    fn climbing_paths_are_refused() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(1);
        h.set_mode(0o644);
        // The tar crate refuses `..` when writing a path, so set the raw name.
        h.as_gnu_mut().unwrap().name[..9].copy_from_slice(b"../escape");
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        let blob = b.into_inner().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("rootfs");
        fs::create_dir_all(&root).unwrap();
        let err = apply_layer(&root, &blob, 0).unwrap_err();
        assert!(err.to_string().contains("leaves the root"), "{err}");
        assert!(!tmp.path().join("escape").exists());
    }
}
