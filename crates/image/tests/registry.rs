//! Against a real registry (Debian's `docker-registry`) with real peer clients (`skopeo`) checking
//! what Prism pushed.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use prism_image::media::Family;
use prism_image::{
    append_layer, build_base, build_layer, BaseRecipe, ConfigChanges, Credentials, ImageError, LayerSpec, Registries,
    RegistryOptions,
};
use serde_json::Value;

use prism_test_support::registry::{busybox_rootfs, ensure_tool, TestRegistry};

fn app_workspace(dir: &Path, content: &str) -> PathBuf {
    let ws = dir.join(format!("ws-{}", content.len()));
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::write(ws.join("hello.txt"), content).unwrap();
    ws
}

fn base_changes() -> ConfigChanges {
    ConfigChanges {
        env: vec![("TZ".into(), "Europe/Berlin".into())],
        entrypoint: Some(vec!["/bin/sh".into(), "-c".into()]),
        workdir: Some("/".into()),
        user: Some("0:0".into()),
        history_comment: "busybox base".into(),
        ..Default::default()
    }
}

fn app_changes(release: &str) -> ConfigChanges {
    ConfigChanges {
        history_comment: format!("release {release}"),
        workdir: Some("/app".into()),
        ..Default::default()
    }
    .with_release(release, "0123abcd", "shop")
}

fn tar_files(tar_bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut files = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        files.insert(path, data);
    }
    files
}

async fn push_base(registry: &TestRegistry, registries: &Registries, tmp: &Path, name: &str, family: Family) {
    let mut recipe = BaseRecipe::new(busybox_rootfs(tmp), base_changes());
    recipe.family = family;
    let result = build_base(registries, &recipe, &registry.reference(name))
        .await
        .unwrap();
    assert_eq!(result.layers.len(), 1);
}

#[tokio::test]
async fn base_then_app_layer_read_back_by_skopeo() {
    let registry = TestRegistry::start(None);
    let tmp = tempfile::tempdir().unwrap();
    let registries = Registries::new();
    push_base(&registry, &registries, tmp.path(), "base/busybox:1", Family::Oci).await;

    let ws = app_workspace(tmp.path(), "hello from prism\n");
    let layer = build_layer(&LayerSpec::new(&ws, ["hello.txt"], "/app")).unwrap();
    let again = build_layer(&LayerSpec::new(&ws, ["hello.txt"], "/app")).unwrap();
    assert_eq!(layer.digest, again.digest, "same input, same layer");
    assert_eq!(layer.diff_id, again.diff_id);

    let target = registry.reference("shop/app:rel-1");
    let base = registry.reference("base/busybox:1");
    let first = append_layer(&registries, &base, &layer, &app_changes("rel-1"), &target)
        .await
        .unwrap();
    // Different repository: the base layer is mounted, not uploaded.
    assert_eq!(first.blobs_mounted, 1, "{first:?}");
    assert_eq!(
        first.bytes_uploaded,
        layer.size + first_config_size(&registry, "shop/app:rel-1")
    );

    let inspect = registry.skopeo_inspect("shop/app:rel-1", None).unwrap();
    assert_eq!(inspect["Labels"]["io.prism.release"], "rel-1");
    assert_eq!(inspect["Labels"]["io.prism.commit"], "0123abcd");
    assert_eq!(inspect["Labels"]["io.prism.application"], "shop");
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 2);
    assert_eq!(inspect["Digest"], first.manifest_digest);
    assert_eq!(inspect["Layers"][1], layer.digest);

    let (manifest, config, layers) = registry.skopeo_copy("shop/app:rel-1");
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 2);
    let env: Vec<&str> = config["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(env.contains(&"TZ=Europe/Berlin"), "{env:?}");
    assert_eq!(config["config"]["WorkingDir"], "/app");
    assert_eq!(config["rootfs"]["diff_ids"][1], layer.diff_id);
    assert_eq!(config["history"].as_array().unwrap().len(), 2);
    let base_files = tar_files(&layers[0]);
    assert!(base_files.contains_key("bin/busybox"), "{:?}", base_files.keys());
    let app_files = tar_files(&layers[1]);
    assert_eq!(
        app_files.get("app/hello.txt").map(Vec::as_slice),
        Some(&b"hello from prism\n"[..])
    );

    // A second app release on the same base: the base layer is already there, zero base bytes.
    let ws2 = app_workspace(tmp.path(), "hello again from prism, release two\n");
    let layer2 = build_layer(&LayerSpec::new(&ws2, ["hello.txt"], "/app")).unwrap();
    let second = append_layer(
        &registries,
        &base,
        &layer2,
        &app_changes("rel-2"),
        &registry.reference("shop/app:rel-2"),
    )
    .await
    .unwrap();
    assert_eq!(second.blobs_mounted, 0);
    assert_eq!(second.blobs_present, 1, "{second:?}");
    assert_eq!(
        second.bytes_uploaded,
        layer2.size + first_config_size(&registry, "shop/app:rel-2")
    );
    // Pushing the identical release again uploads nothing at all.
    let third = append_layer(&registries, &base, &layer, &app_changes("rel-1"), &target)
        .await
        .unwrap();
    assert_eq!(third.bytes_uploaded, 0, "{third:?}");
    assert_eq!(third.manifest_digest, first.manifest_digest, "deterministic manifest");
}

fn first_config_size(registry: &TestRegistry, name: &str) -> u64 {
    registry.skopeo_raw_manifest(name)["config"]["size"].as_u64().unwrap()
}

#[tokio::test]
async fn docker_media_types_are_kept() {
    let registry = TestRegistry::start(None);
    let tmp = tempfile::tempdir().unwrap();
    let registries = Registries::new();
    push_base(&registry, &registries, tmp.path(), "base/docker:1", Family::Docker).await;
    let ws = app_workspace(tmp.path(), "docker family\n");
    let layer = build_layer(&LayerSpec::new(&ws, ["hello.txt"], "/app")).unwrap();
    let result = append_layer(
        &registries,
        &registry.reference("base/docker:1"),
        &layer,
        &app_changes("r1"),
        &registry.reference("base/docker:r1"),
    )
    .await
    .unwrap();
    assert_eq!(result.manifest_media_type, prism_image::media::DOCKER_MANIFEST);
    assert_eq!(result.blobs_present, 1, "same repository: base layer already there");
    let manifest = registry.skopeo_raw_manifest("base/docker:r1");
    assert_eq!(manifest["mediaType"], prism_image::media::DOCKER_MANIFEST);
    assert_eq!(
        manifest["layers"][1]["mediaType"],
        prism_image::media::DOCKER_LAYER_GZIP
    );
    let (_, config, layers) = registry.skopeo_copy("base/docker:r1");
    assert_eq!(config["config"]["Labels"]["io.prism.release"], "r1");
    assert!(tar_files(&layers[1]).contains_key("app/hello.txt"));
}

/// An application that asks for zstd layers: on a Docker schema 2 base the
/// image becomes an OCI image (Docker's schema has no zstd layer type), the
/// base's gzip layer is relisted as OCI gzip, the application's layer is
/// `tar+zstd` made of several frames (the artifact is larger than one
/// compression member), and a real client reads it: `skopeo copy
/// --dest-decompress` (containers/image's decoder, as CRI-O and podman pull)
/// gives back the exact tar whose digest the config lists.
#[tokio::test]
async fn zstd_layer_on_a_docker_base_is_an_oci_image_that_skopeo_decompresses() {
    let registry = TestRegistry::start(None);
    let tmp = tempfile::tempdir().unwrap();
    let registries = Registries::new();
    push_base(&registry, &registries, tmp.path(), "base/docker:1", Family::Docker).await;
    let ws = tmp.path().join("ws-zstd");
    std::fs::create_dir_all(&ws).unwrap();
    // 9 MiB of compressible text: three frames of at most 4 MiB.
    let line = b"public static void main(String[] args) { System.out.println(args.length); }\n";
    let big: Vec<u8> = line.iter().copied().cycle().take(9 << 20).collect();
    std::fs::write(ws.join("app.jar"), &big).unwrap();
    let mut spec = LayerSpec::new(&ws, ["app.jar"], "/app");
    spec.compression = prism_image::Compression::Zstd;
    let layer = build_layer(&spec).unwrap();
    assert!(layer.data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]), "a zstd frame");
    assert!(layer.size < (big.len() / 10) as u64, "compressed: {} bytes", layer.size);
    assert_eq!(build_layer(&spec).unwrap().digest, layer.digest, "deterministic");
    let result = append_layer(
        &registries,
        &registry.reference("base/docker:1"),
        &layer,
        &app_changes("z1"),
        &registry.reference("shop/zstd:z1"),
    )
    .await
    .unwrap();
    assert_eq!(result.manifest_media_type, prism_image::media::OCI_MANIFEST);
    let manifest = registry.skopeo_raw_manifest("shop/zstd:z1");
    assert_eq!(manifest["mediaType"], prism_image::media::OCI_MANIFEST);
    assert_eq!(manifest["layers"][0]["mediaType"], prism_image::media::OCI_LAYER_GZIP);
    assert_eq!(manifest["layers"][1]["mediaType"], prism_image::media::OCI_LAYER_ZSTD);
    assert_eq!(manifest["layers"][1]["digest"], layer.digest);

    let copied = tmp.path().join("decompressed");
    let out = Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false", "--dest-decompress"])
        .arg(format!("docker://127.0.0.1:{}/shop/zstd:z1", registry.port))
        .arg(format!("dir:{}", copied.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let copied_manifest: Value = serde_json::from_slice(&std::fs::read(copied.join("manifest.json")).unwrap()).unwrap();
    let tar = std::fs::read(
        copied.join(
            copied_manifest["layers"][1]["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:"),
        ),
    )
    .unwrap();
    assert_eq!(
        prism_image::sha256_digest(&tar),
        layer.diff_id,
        "the tar the config lists"
    );
    assert_eq!(tar_files(&tar).get("app/app.jar"), Some(&big), "every frame read");
}

#[tokio::test]
async fn escaping_artifact_paths_are_refused_and_nothing_is_pushed() {
    let registry = TestRegistry::start(None);
    let tmp = tempfile::tempdir().unwrap();
    let registries = Registries::new();
    push_base(&registry, &registries, tmp.path(), "base/busybox:1", Family::Oci).await;
    let ws = app_workspace(tmp.path(), "x\n");
    std::os::unix::fs::symlink("/etc/passwd", ws.join("abs-link")).unwrap();
    std::os::unix::fs::symlink("../../etc/passwd", ws.join("rel-link")).unwrap();
    std::fs::create_dir_all(ws.join("dir")).unwrap();
    std::os::unix::fs::symlink("../../outside", ws.join("dir/nested-link")).unwrap();
    std::os::unix::fs::symlink("hello.txt", ws.join("ok-link")).unwrap();

    for path in ["../etc/passwd", "/etc/passwd", "abs-link", "rel-link", "dir"] {
        let err = build_layer(&LayerSpec::new(&ws, [path], "/app")).unwrap_err();
        assert!(matches!(err, ImageError::Artifact { .. }), "{path}: {err}");
        let expected = if path == "dir" { "dir/nested-link" } else { path };
        assert!(err.to_string().contains(expected), "{path}: {err}");
    }
    // A symlink inside the tree is stored as a symlink.
    let layer = build_layer(&LayerSpec::new(&ws, ["ok-link", "hello.txt"], "/app")).unwrap();
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&layer.data[..])
        .read_to_end(&mut tar)
        .unwrap();
    let mut archive = tar::Archive::new(tar.as_slice());
    let link = archive
        .entries()
        .unwrap()
        .map(Result::unwrap)
        .find(|e| e.path().unwrap().ends_with("ok-link"))
        .unwrap();
    assert_eq!(link.header().entry_type(), tar::EntryType::Symlink);
    assert_eq!(link.link_name().unwrap().unwrap().to_str(), Some("hello.txt"));
    assert_eq!(link.header().mtime().unwrap(), 0);
    assert_eq!(link.header().uid().unwrap(), 0);

    assert!(
        registry.skopeo_inspect("shop/app:refused", None).is_err(),
        "nothing pushed under the target tag"
    );
}

#[tokio::test]
async fn missing_base_is_base_not_found() {
    let registry = TestRegistry::start(None);
    let tmp = tempfile::tempdir().unwrap();
    let ws = app_workspace(tmp.path(), "x\n");
    let layer = build_layer(&LayerSpec::new(&ws, ["hello.txt"], "/app")).unwrap();
    let err = append_layer(
        &Registries::new(),
        &registry.reference("base/none:1"),
        &layer,
        &app_changes("r"),
        &registry.reference("shop/app:r"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ImageError::BaseNotFound { .. }), "{err}");
    assert!(err.to_string().contains("base/none:1"), "{err}");
    assert!(registry.skopeo_inspect("shop/app:r", None).is_err());
}

#[tokio::test]
async fn basic_auth_right_and_wrong_credentials() {
    let registry = TestRegistry::start(Some(("prism", "s3cret")));
    let tmp = tempfile::tempdir().unwrap();
    let host = format!("127.0.0.1:{}", registry.port);
    let creds = |password: &str| RegistryOptions {
        credentials: Some(Credentials {
            username: "prism".into(),
            password: password.into(),
        }),
        ..Default::default()
    };
    let good = Registries::new().with(&host, creds("s3cret"));
    push_base(&registry, &good, tmp.path(), "base/busybox:1", Family::Oci).await;
    let ws = app_workspace(tmp.path(), "auth\n");
    let layer = build_layer(&LayerSpec::new(&ws, ["hello.txt"], "/app")).unwrap();
    let base = registry.reference("base/busybox:1");
    append_layer(
        &good,
        &base,
        &layer,
        &app_changes("r1"),
        &registry.reference("shop/app:r1"),
    )
    .await
    .unwrap();
    let inspect = registry.skopeo_inspect("shop/app:r1", Some("prism:s3cret")).unwrap();
    assert_eq!(inspect["Labels"]["io.prism.release"], "r1");

    let bad = Registries::new().with(&host, creds("wrong"));
    let err = append_layer(
        &bad,
        &base,
        &layer,
        &app_changes("r2"),
        &registry.reference("shop/app:r2"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ImageError::Auth { .. }), "{err}");
    assert!(
        err.to_string().contains("authentication required"),
        "registry's own message: {err}"
    );

    let none = Registries::new();
    let err = append_layer(
        &none,
        &base,
        &layer,
        &app_changes("r3"),
        &registry.reference("shop/app:r3"),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("credentials"), "{err}");
}

/// The pushed image runs as a real container: `umoci unpack` of the skopeo-copied layout, `runc run`
/// with the image's own entrypoint and cmd (busybox `sh -c "cat /app/hello.txt"`).
#[tokio::test]
async fn pushed_image_runs_with_runc() {
    ensure_tool("umoci", "umoci");
    ensure_tool("runc", "runc");
    let registry = TestRegistry::start(None);
    let tmp = tempfile::tempdir().unwrap();
    let registries = Registries::new();
    push_base(&registry, &registries, tmp.path(), "base/busybox:1", Family::Oci).await;
    let ws = app_workspace(tmp.path(), "hello from a prism container\n");
    let layer = build_layer(&LayerSpec::new(&ws, ["hello.txt"], "/app")).unwrap();
    let changes = ConfigChanges {
        cmd: Some(vec!["cat /app/hello.txt".into()]),
        ..app_changes("run-1")
    };
    let target = registry.reference("shop/app:run-1");
    append_layer(
        &registries,
        &registry.reference("base/busybox:1"),
        &layer,
        &changes,
        &target,
    )
    .await
    .unwrap();

    let layout = tmp.path().join("layout");
    let out = Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{target}"))
        .arg(format!("oci:{}:run", layout.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bundle = tmp.path().join("bundle");
    let out = Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:run", layout.display()))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "umoci unpack: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config_path = bundle.join("config.json");
    let mut spec: Value = serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    assert_eq!(
        spec["process"]["args"],
        serde_json::json!(["/bin/sh", "-c", "cat /app/hello.txt"])
    );
    spec["process"]["terminal"] = Value::Bool(false);
    std::fs::write(&config_path, serde_json::to_vec(&spec).unwrap()).unwrap();
    let id = format!("prism-image-test-{}", std::process::id());
    let out = Command::new("runc")
        .arg("run")
        .arg("--bundle")
        .arg(&bundle)
        .arg(&id)
        .output()
        .unwrap();
    let _ = Command::new("runc").args(["delete", "--force", &id]).output();
    assert!(
        out.status.success(),
        "runc run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from a prism container\n");
}

/// A base given as an OCI index on one registry, resolved to linux/amd64, and the app pushed to another
/// registry: base layers cannot be mounted there, so they are copied (downloaded and uploaded).
#[tokio::test]
async fn index_base_on_another_registry_is_resolved_and_copied() {
    let source = TestRegistry::start(None);
    let dest = TestRegistry::start(None);
    let tmp = tempfile::tempdir().unwrap();
    let registries = Registries::new();
    push_base(&source, &registries, tmp.path(), "base/busybox:1", Family::Oci).await;
    let client = registries.client(&format!("127.0.0.1:{}", source.port)).unwrap();
    let image = client.get_manifest("base/busybox", "1").await.unwrap().unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": prism_image::media::OCI_INDEX,
        "manifests": [
            {"mediaType": image.media_type, "digest": image.digest, "size": image.bytes.len(),
             "platform": {"architecture": "arm64", "os": "linux"}},
            {"mediaType": image.media_type, "digest": image.digest, "size": image.bytes.len(),
             "platform": {"architecture": "amd64", "os": "linux"}},
        ],
    });
    client
        .put_manifest(
            "base/busybox",
            "multi",
            prism_image::media::OCI_INDEX,
            serde_json::to_vec(&index).unwrap(),
        )
        .await
        .unwrap();
    let resolved = client
        .get_image_manifest("base/busybox", "multi", "linux", "amd64")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resolved.digest, image.digest);
    assert!(client
        .get_image_manifest("base/busybox", "multi", "linux", "s390x")
        .await
        .unwrap()
        .is_none());

    let ws = app_workspace(tmp.path(), "across registries\n");
    let layer = build_layer(&LayerSpec::new(&ws, ["hello.txt"], "/app")).unwrap();
    let result = append_layer(
        &registries,
        &source.reference("base/busybox:multi"),
        &layer,
        &app_changes("x1"),
        &dest.reference("shop/app:x1"),
    )
    .await
    .unwrap();
    assert_eq!(result.blobs_mounted, 0);
    assert_eq!(result.blobs_uploaded, 3, "base layer, app layer, config: {result:?}");
    let inspect = dest.skopeo_inspect("shop/app:x1", None).unwrap();
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 2);
    assert_eq!(inspect["Labels"]["io.prism.application"], "shop");
}

/// The registry answers a mount whose source lacks the blob with 202 (an upload session): that is a
/// refusal, and a normal upload still works afterwards.
#[tokio::test]
async fn refused_mount_falls_back_to_upload() {
    let registry = TestRegistry::start(None);
    let registries = Registries::new();
    let client = registries.client(&format!("127.0.0.1:{}", registry.port)).unwrap();
    let data = bytes::Bytes::from_static(b"some blob");
    let digest = prism_image::sha256_digest(&data);
    client.upload_blob("src/repo", &digest, data.clone()).await.unwrap();
    assert!(
        !client.mount_blob("dst/one", &digest, "other/repo").await.unwrap(),
        "no blob in other/repo"
    );
    assert!(!client.has_blob("dst/one", &digest).await.unwrap());
    assert_eq!(
        client.ensure_blob("dst/one", &digest, data.clone()).await.unwrap(),
        data.len() as u64
    );
    assert!(client.mount_blob("dst/two", &digest, "src/repo").await.unwrap());
    assert!(client.has_blob("dst/two", &digest).await.unwrap());
    assert_eq!(client.ensure_blob("dst/two", &digest, data).await.unwrap(), 0);
}

/// Directories are walked into sorted entries with modes kept, fixed mtime and owner, parents added.
#[test]
fn directory_artifacts_are_sorted_with_modes_kept() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path();
    std::fs::create_dir_all(ws.join("dist/b")).unwrap();
    std::fs::write(ws.join("dist/z.txt"), "z").unwrap();
    std::fs::write(ws.join("dist/a.sh"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(ws.join("dist/a.sh"), std::fs::Permissions::from_mode(0o750)).unwrap();
    std::fs::write(ws.join("dist/b/c.txt"), "c").unwrap();
    let mut spec = LayerSpec::new(ws, ["dist"], "/srv/app");
    spec.compression = prism_image::Compression::None;
    let layer = build_layer(&spec).unwrap();
    assert_eq!(layer.digest, layer.diff_id, "uncompressed: blob is the tar");
    let mut archive = tar::Archive::new(&layer.data[..]);
    let entries: Vec<(String, u32, u64, u64)> = archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            (
                e.path().unwrap().to_string_lossy().trim_end_matches('/').to_string(),
                h.mode().unwrap(),
                h.mtime().unwrap(),
                h.uid().unwrap() + h.gid().unwrap(),
            )
        })
        .collect();
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "srv",
            "srv/app",
            "srv/app/dist",
            "srv/app/dist/a.sh",
            "srv/app/dist/b",
            "srv/app/dist/b/c.txt",
            "srv/app/dist/z.txt"
        ]
    );
    assert_eq!(entries[3].1, 0o750);
    assert!(entries.iter().all(|e| e.2 == 0 && e.3 == 0), "{entries:?}");
    // Touching the files changes nothing: mtime is not recorded.
    std::fs::write(ws.join("dist/z.txt"), "z").unwrap();
    let mut again = LayerSpec::new(ws, ["dist"], "/srv/app");
    again.compression = prism_image::Compression::None;
    assert_eq!(build_layer(&again).unwrap().digest, layer.digest);
}

/// Rough timing of a 50 MiB random artifact on a pushed base (`cargo test -- --ignored timing`).
#[tokio::test]
#[ignore = "timing only"]
async fn timing_50_mib_artifact() {
    let registry = TestRegistry::start(None);
    let tmp = tempfile::tempdir().unwrap();
    let registries = Registries::new();
    push_base(&registry, &registries, tmp.path(), "base/busybox:1", Family::Oci).await;
    let ws = tmp.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let mut data = vec![0u8; 50 << 20];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    std::fs::write(ws.join("app.bin"), &data).unwrap();
    let start = Instant::now();
    let layer = build_layer(&LayerSpec::new(&ws, ["app.bin"], "/app")).unwrap();
    let built = start.elapsed();
    let result = append_layer(
        &registries,
        &registry.reference("base/busybox:1"),
        &layer,
        &app_changes("big"),
        &registry.reference("shop/big:1"),
    )
    .await
    .unwrap();
    eprintln!(
        "layer {built:?}, total {:?}, uploaded {} bytes",
        start.elapsed(),
        result.bytes_uploaded
    );
}
