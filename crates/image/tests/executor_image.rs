//! Host programs carried into an image with their libraries: the image runs
//! them with runc on a bare root (no distribution inside).

use std::path::PathBuf;
use std::process::Command;

use prism_image::executor_image::{push_executor_image, ExecutorImage};
use prism_image::Registries;

use prism_test_support::registry::{ensure_tool, TestRegistry};

#[tokio::test]
async fn a_dynamic_host_program_runs_from_its_executor_image() {
    ensure_tool("skopeo", "skopeo");
    ensure_tool("umoci", "umoci");
    let registry = TestRegistry::start(None);
    let registries = Registries::new();
    let target = registry.reference("prism/executor:test");
    // `ls` is a dynamically linked program of every Debian host.
    let spec = ExecutorImage {
        programs: vec![PathBuf::from("/bin/ls")],
        files: vec![],
        entrypoint: vec!["/bin/ls".into()],
        strip_debug: true,
    };
    let first = push_executor_image(&registries, &spec, &target).await.unwrap();
    let again = push_executor_image(&registries, &spec, &target).await.unwrap();
    assert_eq!(first.layers, again.layers, "the same programs give the same layer");
    assert_eq!(again.bytes_uploaded, 0, "nothing is uploaded twice");

    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("oci");
    let st = Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{target}"))
        .arg(format!("oci:{}:t", layout.display()))
        .status()
        .unwrap();
    assert!(st.success());
    let bundle = tmp.path().join("bundle");
    let st = Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:t", layout.display()))
        .arg(&bundle)
        .status()
        .unwrap();
    assert!(st.success());
    let rootfs = bundle.join("rootfs");
    assert!(rootfs.join("bin/ls").is_file());
    assert!(
        !rootfs.join("bin/sh").exists(),
        "only what was asked for is in the image"
    );
    // Run it in the unpacked root: the copied libraries are enough.
    let out = Command::new("chroot")
        .arg(&rootfs)
        .args(["/bin/ls", "/"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains("workspace") && listing.contains("tmp"), "{listing}");
}
