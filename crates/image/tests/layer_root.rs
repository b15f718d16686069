//! Issue 11 item 3: with `"workdir": "data"` and a repository containing
//! `data -> ../../..`, `artifact_paths: ["secret.key", "prism.db"]` put
//! Prism's key and database into the image. The layer root is now resolved
//! without following symlinks, and each artifact path too. Before the fix the
//! first assertion failed: the layer was built and held both files.

use prism_image::{build_layer, LayerSpec};

#[test]
fn a_layer_root_reached_through_a_symlink_packages_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().canonicalize().unwrap();
    std::fs::write(data_dir.join("secret.key"), "key").unwrap();
    std::fs::write(data_dir.join("prism.db"), "db").unwrap();
    let src = data_dir.join("builds/b1/src");
    std::fs::create_dir_all(&src).unwrap();
    std::os::unix::fs::symlink("../../..", src.join("data")).unwrap();

    for root in [src.join("data"), src.join("../src/data"), src.join("..")] {
        let err = build_layer(&LayerSpec::new(&root, ["secret.key", "prism.db"], "/app")).unwrap_err();
        assert!(err.to_string().contains("symlink"), "{root:?}: {err}");
    }

    // Inside a real root, artifact paths through a link out are refused too.
    std::fs::create_dir(src.join("app")).unwrap();
    std::os::unix::fs::symlink("../../../..", src.join("app/up")).unwrap();
    let err = build_layer(&LayerSpec::new(src.join("app"), ["up/secret.key"], "/app")).unwrap_err();
    assert!(err.to_string().contains("symlink"), "{err}");
    std::fs::write(src.join("app/ok.txt"), "fine").unwrap();
    build_layer(&LayerSpec::new(src.join("app"), ["ok.txt"], "/app")).unwrap();
}
