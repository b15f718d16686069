//! Prism's own server image, made without a Docker daemon from the binary
//! that runs this code: the binary at /usr/local/bin/prism, the shared
//! libraries `ldd` lists for it and for git (which checkout and ls-remote
//! run), the CA certificates, and a passwd naming the unprivileged user
//! 10001 it runs as. Nothing in it needs to be written: the data dir and
//! /tmp are volumes, so it runs with a read-only root filesystem.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::base::DEFAULT_PATH;
use crate::error::{ImageError, Result};
use crate::executor_image::{shared_libraries, stage_file};
use crate::image::{apply_changes, push_image, ConfigChanges, PushResult};
use crate::layer::{build_layer, LayerSpec};
use crate::media::Family;
use crate::reference::ImageReference;
use crate::registry::Registries;

/// The uid and gid the server runs as in its image.
pub const SERVER_UID: u32 = 10001;
/// Where the binary sits in the image.
pub const SERVER_BINARY: &str = "/usr/local/bin/prism";
/// The data dir in the image (a volume).
pub const SERVER_DATA_DIR: &str = "/var/lib/prism";

/// Builds Prism's server image from `binary` and pushes it as `target`.
pub async fn push_server_image(registries: &Registries, binary: &Path, target: &ImageReference) -> Result<PushResult> {
    let stage = Stage::new()?;
    let dest = stage.0.join(SERVER_BINARY.trim_start_matches('/'));
    fs::create_dir_all(dest.parent().expect("has a parent")).map_err(ImageError::io("creating usr/local/bin"))?;
    fs::copy(binary, &dest).map_err(ImageError::io(format!("copying {}", binary.display())))?;
    // A debug build is hundreds of megabytes of debug sections; best effort.
    let _ = std::process::Command::new("objcopy")
        .arg("--strip-debug")
        .arg(&dest)
        .status();
    let mut wanted: Vec<PathBuf> = shared_libraries(binary)?;
    for git in [
        "/usr/bin/git",
        "/usr/lib/git-core/git",
        "/usr/lib/git-core/git-remote-http",
    ] {
        let git = Path::new(git);
        if git.exists() {
            wanted.push(git.to_path_buf());
            wanted.extend(shared_libraries(git)?);
        }
    }
    wanted.extend(
        ["/etc/ssl/certs/ca-certificates.crt"]
            .iter()
            .map(PathBuf::from)
            .filter(|p| p.exists()),
    );
    wanted.sort();
    wanted.dedup();
    for p in &wanted {
        stage_file(&stage.0, p)?;
    }
    for dir in ["tmp", SERVER_DATA_DIR.trim_start_matches('/'), "etc"] {
        fs::create_dir_all(stage.0.join(dir)).map_err(ImageError::io("creating image directories"))?;
    }
    fs::write(
        stage.0.join("etc/passwd"),
        format!(
            "root:x:0:0:root:/root:/bin/false\nprism:x:{SERVER_UID}:{SERVER_UID}:prism:{SERVER_DATA_DIR}:/bin/false\n"
        ),
    )
    .map_err(ImageError::io("writing passwd"))?;
    fs::write(stage.0.join("etc/group"), format!("root:x:0:\nprism:x:{SERVER_UID}:\n"))
        .map_err(ImageError::io("writing group"))?;
    let layer = build_layer(&LayerSpec::new(&stage.0, ["."], "/"))?;
    let mut config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": [format!("PATH={DEFAULT_PATH}")], "ExposedPorts": {"8080/tcp": {}}},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [],
    });
    let changes = ConfigChanges {
        env: vec![
            ("PRISM_LISTEN".into(), "0.0.0.0:8080".into()),
            ("PRISM_DATA_DIR".into(), SERVER_DATA_DIR.into()),
        ],
        entrypoint: Some(vec![SERVER_BINARY.into()]),
        cmd: Some(vec!["serve".into()]),
        workdir: Some(SERVER_DATA_DIR.into()),
        user: Some(format!("{SERVER_UID}:{SERVER_UID}")),
        history_comment: "prism server".into(),
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

/// A scratch directory removed on drop.
struct Stage(PathBuf);

impl Stage {
    fn new() -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("prism-server-image-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).map_err(ImageError::io(format!("creating {}", dir.display())))?;
        Ok(Self(dir))
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
