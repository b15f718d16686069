//! Prism's own image (issue 18 item 1): `prism admin image` builds it from
//! the binary without a Docker daemon and pushes it to a real registry;
//! skopeo and umoci read it back; runc runs it as uid 10001 with a
//! read-only root filesystem (the data dir and /tmp on tmpfs, as the
//! Kubernetes manifests mount them), and it answers /healthz.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use prism_test_support::process::clean_command;
use prism_test_support::registry::{ensure_tool, TestRegistry};
use prism_test_support::{free_port, TempDir};
use serde_json::{json, Value};

#[test]
fn the_server_image_runs_as_non_root_on_a_read_only_root_and_answers_healthz() {
    ensure_tool("skopeo", "skopeo");
    ensure_tool("umoci", "umoci");
    ensure_tool("runc", "runc");
    let registry = TestRegistry::start(None);
    let reference = format!("127.0.0.1:{}/prism/server:test", registry.port);
    let out = clean_command()
        .args(["admin", "image", "--to", &reference])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    runs_as_a_pod_would(&reference);
}

/// The `Dockerfile` at the top of the repository, built with buildah (as
/// someone with Docker or buildah would) and run the same way: the same
/// user, entrypoint, read-only root and /healthz. This machine cannot pull
/// Debian's image, so the build's RUNTIME is Prism's own image (which holds
/// git and the CA certificates the default `runtime` stage installs).
#[test]
fn the_dockerfile_builds_with_buildah_into_an_image_that_runs_the_same_way() {
    ensure_tool("skopeo", "skopeo");
    ensure_tool("umoci", "umoci");
    ensure_tool("runc", "runc");
    ensure_tool("buildah", "buildah");
    let registry = TestRegistry::start(None);
    let base = format!("127.0.0.1:{}/prism/server:base", registry.port);
    let out = clean_command()
        .args(["admin", "image", "--to", &base])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let tmp = TempDir::new("dockerfile");
    let context = tmp.path().join("context");
    std::fs::create_dir_all(context.join("deploy/docker")).unwrap();
    std::fs::copy(repo.join("Dockerfile"), context.join("Dockerfile")).unwrap();
    let copied = Command::new("cp")
        .arg("-r")
        .arg(repo.join("deploy/docker/data"))
        .arg(context.join("deploy/docker/"))
        .status()
        .unwrap();
    assert!(copied.success());
    std::fs::copy(env!("CARGO_BIN_EXE_prism"), context.join("prism")).unwrap();
    // A debug build is hundreds of megabytes of debug sections.
    let _ = Command::new("objcopy")
        .arg("--strip-debug")
        .arg(context.join("prism"))
        .status();
    let storage = tmp.path().join("buildah");
    let buildah = |args: &[&str]| {
        let out = Command::new("buildah")
            .arg("--storage-driver")
            .arg("vfs")
            .arg("--root")
            .arg(storage.join("root"))
            .arg("--runroot")
            .arg(storage.join("run"))
            .args(args)
            .env("BUILDAH_ISOLATION", "chroot")
            .current_dir(&context)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "buildah {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let runtime = format!("RUNTIME={base}");
    buildah(&[
        "bud",
        "--tls-verify=false",
        "--build-arg",
        &runtime,
        "-t",
        "localhost/prism:dockerfile",
        ".",
    ]);
    let reference = format!("127.0.0.1:{}/prism/server:dockerfile", registry.port);
    buildah(&[
        "push",
        "--tls-verify=false",
        "localhost/prism:dockerfile",
        &format!("docker://{reference}"),
    ]);
    runs_as_a_pod_would(&reference);
}

/// Unpacks `reference` and runs it with runc as a pod would (uid 10001, a
/// read-only root, the data dir and /tmp on tmpfs, the host's network):
/// it must answer /healthz, as that user.
fn runs_as_a_pod_would(reference: &str) {
    let tmp = TempDir::new("server-image");
    let layout = tmp.path().join("layout");
    let out = Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("oci:{}:run", layout.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bundle = tmp.path().join("bundle");
    let out = Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:run", layout.display()))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let spec_path = bundle.join("config.json");
    let mut spec: Value = serde_json::from_slice(&std::fs::read(&spec_path).unwrap()).unwrap();
    // What the image itself says: user, entrypoint, command.
    assert_eq!(spec["process"]["user"]["uid"], 10001, "{}", spec["process"]);
    assert_eq!(spec["process"]["user"]["gid"], 10001);
    let args: Vec<&str> = spec["process"]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args, ["/usr/local/bin/prism", "serve"]);
    // As a pod would run it: read-only root, data dir and /tmp as writable
    // volumes, the host's network (so the test reaches it on loopback).
    let port = free_port();
    spec["process"]["terminal"] = json!(false);
    spec["root"]["readonly"] = json!(true);
    let env = spec["process"]["env"].as_array_mut().unwrap();
    env.retain(|e| !e.as_str().unwrap().starts_with("PRISM_LISTEN="));
    env.push(json!(format!("PRISM_LISTEN=127.0.0.1:{port}")));
    env.push(json!("PRISM_ADMIN_PASSWORD=image-test-password"));
    let mounts = spec["mounts"].as_array_mut().unwrap();
    for dest in ["/var/lib/prism", "/tmp"] {
        mounts.push(json!({"destination": dest, "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "nodev", "mode=0700", "uid=10001", "gid=10001", "size=64m"]}));
    }
    let namespaces = spec["linux"]["namespaces"].as_array_mut().unwrap();
    namespaces.retain(|n| n["type"] != "network");
    std::fs::write(&spec_path, serde_json::to_vec(&spec).unwrap()).unwrap();

    let tag = reference.rsplit(':').next().unwrap_or("run");
    let id = format!("prism-image-test-{}-{tag}", std::process::id());
    let log = std::fs::File::create(tmp.path().join("server.log")).unwrap();
    let mut child = Command::new("runc")
        .arg("run")
        .arg("--bundle")
        .arg(&bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let healthy = loop {
        if prism_test_support::process::healthy(port) {
            break true;
        }
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // Who the server runs as, seen from the host.
    let state = Command::new("runc").args(["state", &id]).output().unwrap();
    let pid = serde_json::from_slice::<Value>(&state.stdout)
        .ok()
        .and_then(|s| s["pid"].as_u64());
    let status = pid
        .map(|p| std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default())
        .unwrap_or_default();
    let _ = Command::new("runc").args(["kill", &id, "KILL"]).output();
    let _ = child.wait();
    let _ = Command::new("runc").args(["delete", "--force", &id]).output();
    let server_log = std::fs::read_to_string(tmp.path().join("server.log")).unwrap_or_default();
    assert!(healthy, "the image did not answer /healthz:\n{server_log}");
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap_or("");
    assert!(uid_line.split_whitespace().nth(1) == Some("10001"), "{uid_line:?}");
}
