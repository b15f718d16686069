//! An image that carries programs of the build host into a build cluster:
//! how Prism's own binary (and the tools its in-pod steps call) reach a
//! pod without a Dockerfile, the way Argo Workflows and Zadig deliver their
//! executors. Each program is copied with the shared libraries `ldd` lists
//! for it, at the same paths, so the image runs it on any node of the same
//! architecture; nothing else of the host is taken. The layer is
//! deterministic (the same programs give the same digest).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::base::DEFAULT_PATH;
use crate::error::{ImageError, Result};
use crate::image::{apply_changes, push_image, ConfigChanges, PushResult};
use crate::layer::{build_layer, LayerSpec};
use crate::media::Family;
use crate::reference::ImageReference;
use crate::registry::Registries;

/// What goes into an executor image.
#[derive(Debug, Clone)]
pub struct ExecutorImage {
    /// Programs (absolute paths on this host); each keeps its path in the image.
    pub programs: Vec<PathBuf>,
    /// Plain files or directories copied as they are (CA certificates ...).
    pub files: Vec<PathBuf>,
    pub entrypoint: Vec<String>,
    /// Copy the programs without their debug sections (`objcopy
    /// --strip-debug`, when there is one): a debug build of Prism shrinks
    /// from hundreds of megabytes to tens, which every node pulls.
    pub strip_debug: bool,
}

/// The shared libraries a program loads, as `ldd` resolves them here.
pub fn shared_libraries(program: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(program)
        .output()
        .map_err(ImageError::io(format!("ldd {}", program.display())))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("not a dynamic executable") || !out.status.success() {
        return Ok(Vec::new());
    }
    let mut libs = Vec::new();
    for line in text.lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            libs.push(PathBuf::from(p));
        }
    }
    Ok(libs)
}

/// Copies `src` to `stage/<src>` (the same absolute path under the stage),
/// following links to the file they name (the image needs the bytes).
pub(crate) fn stage_file(stage: &Path, src: &Path) -> Result<()> {
    let rel = src.strip_prefix("/").unwrap_or(src);
    let dest = stage.join(rel);
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).map_err(ImageError::io(format!("creating {}", parent.display())))?;
    }
    let meta = fs::metadata(src).map_err(ImageError::io(format!("reading {}", src.display())))?;
    if meta.is_dir() {
        for entry in fs::read_dir(src).map_err(ImageError::io(format!("listing {}", src.display())))? {
            let entry = entry.map_err(ImageError::io(format!("listing {}", src.display())))?;
            stage_file(stage, &entry.path())?;
        }
        return Ok(());
    }
    fs::copy(src, &dest).map_err(ImageError::io(format!("copying {}", src.display())))?;
    Ok(())
}

/// Builds the image in a scratch directory and pushes it as `target`.
pub async fn push_executor_image(
    registries: &Registries,
    spec: &ExecutorImage,
    target: &ImageReference,
) -> Result<PushResult> {
    let stage = tempfile_dir()?;
    let mut wanted: BTreeSet<PathBuf> = BTreeSet::new();
    for p in &spec.programs {
        if !p.is_absolute() {
            return Err(ImageError::artifact(p.display(), "programs must be absolute paths"));
        }
        wanted.insert(p.clone());
        wanted.extend(shared_libraries(p)?);
    }
    wanted.extend(spec.files.iter().cloned());
    for p in &wanted {
        stage_file(&stage.0, p)?;
    }
    if spec.strip_debug {
        for p in &spec.programs {
            let staged = stage.0.join(p.strip_prefix("/").unwrap_or(p));
            // Best effort: an unstripped program runs all the same.
            let _ = Command::new("objcopy").arg("--strip-debug").arg(&staged).status();
        }
    }
    for dir in ["tmp", "workspace"] {
        fs::create_dir_all(stage.0.join(dir)).map_err(ImageError::io("creating image directories"))?;
    }
    fs::write(
        stage.0.join("etc-passwd"),
        "root:x:0:0:root:/workspace:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .map_err(ImageError::io("writing passwd"))?;
    fs::create_dir_all(stage.0.join("etc")).map_err(ImageError::io("creating etc"))?;
    fs::rename(stage.0.join("etc-passwd"), stage.0.join("etc/passwd")).map_err(ImageError::io("placing passwd"))?;
    let layer = build_layer(&LayerSpec::new(&stage.0, ["."], "/"))?;
    let mut config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": [format!("PATH={DEFAULT_PATH}")]},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [],
    });
    let changes = ConfigChanges {
        entrypoint: Some(spec.entrypoint.clone()),
        workdir: Some("/workspace".into()),
        history_comment: "prism executor".into(),
        ..Default::default()
    };
    apply_changes(&mut config, &changes, std::slice::from_ref(&layer.diff_id))?;
    let client = registries.client(&target.registry)?;
    let mut result = PushResult::default();
    push_image(
        &client,
        target,
        Family::Oci,
        &config,
        Vec::new(),
        &[&layer],
        &mut result,
    )
    .await?;
    Ok(result)
}

/// A scratch directory removed on drop (no extra dependency for one use).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn tempfile_dir() -> Result<Scratch> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "prism-executor-image-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(ImageError::io(format!("creating {}", dir.display())))?;
    Ok(Scratch(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_names_the_libraries_of_a_dynamic_program() {
        let libs = shared_libraries(Path::new("/bin/sh")).unwrap();
        assert!(libs.iter().any(|l| l.to_string_lossy().contains("libc.so")), "{libs:?}");
        assert!(libs.iter().all(|l| l.is_absolute()));
    }
}
