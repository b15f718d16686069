//! A builder image pulled by digest from a real registry and unpacked once
//! into a cached root filesystem, owners shifted into the build containers'
//! uid range.

use std::os::unix::fs::MetadataExt;

use prism_image::unpack::{rootfs_path, unpack_image};
use prism_image::{build_base, BaseRecipe, ConfigChanges, Registries};

use prism_test_support::registry::{busybox_rootfs, TestRegistry};

#[tokio::test]
async fn a_builder_image_is_unpacked_once_per_digest() {
    let registry = TestRegistry::start(None);
    let tmp = tempfile::tempdir().unwrap();
    let registries = Registries::new();
    let recipe = BaseRecipe::new(busybox_rootfs(tmp.path()), ConfigChanges::default());
    let target = registry.reference("builders/busybox:1");
    let pushed = build_base(&registries, &recipe, &target).await.unwrap();
    let client = registries.client(&target.registry).unwrap();
    let cache = tmp.path().join("cache");

    let root = unpack_image(&client, &target.repository, &pushed.manifest_digest, &cache, 400_000)
        .await
        .unwrap();
    assert_eq!(root, rootfs_path(&cache, &pushed.manifest_digest));
    let busybox = root.join("bin/busybox");
    assert!(busybox.is_file(), "{}", busybox.display());
    assert_eq!(std::fs::metadata(&busybox).unwrap().uid(), 400_000);
    assert_eq!(std::fs::metadata(&root).unwrap().uid(), 400_000);

    // The second build of the same digest reuses it: nothing is downloaded
    // (the registry is gone) and the same root comes back.
    drop(registry);
    let again = unpack_image(&client, &target.repository, &pushed.manifest_digest, &cache, 400_000)
        .await
        .unwrap();
    assert_eq!(again, root);
    // No half-unpacked staging directory is left beside it.
    let entries: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
}

#[tokio::test]
async fn an_unknown_digest_is_not_found() {
    let registry = TestRegistry::start(None);
    let tmp = tempfile::tempdir().unwrap();
    let registries = Registries::new();
    let target = registry.reference("builders/none:1");
    let client = registries.client(&target.registry).unwrap();
    let missing = format!("sha256:{}", "0".repeat(64));
    let err = unpack_image(&client, &target.repository, &missing, tmp.path(), 400_000)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");
    assert!(!rootfs_path(tmp.path(), &missing).exists());
}
