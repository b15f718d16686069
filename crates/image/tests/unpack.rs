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

/// A layer over 4 MiB is several gzip members (see layer.rs); all of it is
/// unpacked. Builds of one digest that start together each get the whole
/// root, and one copy is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_layers_unpack_whole_and_concurrent_unpacks_do_not_race() {
    let registry = TestRegistry::start(None);
    let tmp = tempfile::tempdir().unwrap();
    let registries = Registries::new();
    let tarball = busybox_rootfs(tmp.path());
    // 12 MiB that do not compress much, added to the root filesystem.
    let mut big = Vec::with_capacity(12 << 20);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while big.len() < 12 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        big.extend_from_slice(&x.to_le_bytes());
    }
    let root_dir = tmp.path().join("rootfs");
    std::fs::write(root_dir.join("big.bin"), &big).unwrap();
    let mut archive = tar::Builder::new(std::fs::File::create(&tarball).unwrap());
    archive.follow_symlinks(false);
    archive.append_dir_all(".", &root_dir).unwrap();
    archive.finish().unwrap();
    drop(archive);

    let recipe = BaseRecipe::new(tarball, ConfigChanges::default());
    let target = registry.reference("builders/big:1");
    let pushed = build_base(&registries, &recipe, &target).await.unwrap();
    let client = registries.client(&target.registry).unwrap();
    let cache = tmp.path().join("cache");
    let unpacks: Vec<_> = (0..3)
        .map(|_| {
            let (client, repo, digest, cache) = (
                client.clone(),
                target.repository.clone(),
                pushed.manifest_digest.clone(),
                cache.clone(),
            );
            tokio::spawn(async move { unpack_image(&client, &repo, &digest, &cache, 400_000).await })
        })
        .collect();
    let mut roots = Vec::new();
    for u in unpacks {
        roots.push(u.await.unwrap().unwrap());
    }
    assert!(roots.iter().all(|r| *r == roots[0]));
    assert_eq!(std::fs::read(roots[0].join("big.bin")).unwrap(), big, "the whole file");
    assert!(roots[0].join("bin/busybox").is_file());
    let entries: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
}
