//! Test support shared by the image tests and the end-to-end build tests
//! (`crates/prism/tests/build_e2e.rs` includes this file): a real
//! `docker-registry`, `skopeo` as the peer client, a busybox root filesystem.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use prism_image::ImageReference;
use serde_json::Value;

pub fn ensure_tool(binary: &str, package: &str) {
    if Command::new("which")
        .arg(binary)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
    {
        return;
    }
    let status = Command::new("apt-get")
        .args(["install", "-y", "-q", package])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .expect("apt-get runs");
    assert!(status.success(), "installing {package} failed");
}

/// A `docker-registry` on a free port of 127.0.0.1 (or of another local
/// address), storage in a temp dir; killed on drop.
pub struct TestRegistry {
    pub child: Child,
    pub port: u16,
    /// The address it listens on.
    pub ip: std::net::IpAddr,
    pub dir: tempfile::TempDir,
}

impl TestRegistry {
    pub fn start(htpasswd: Option<(&str, &str)>) -> Self {
        Self::start_on(std::net::Ipv4Addr::LOCALHOST.into(), htpasswd)
    }

    /// On `ip` (an address of this host, e.g. a test node's pod gateway).
    pub fn start_on(ip: std::net::IpAddr, htpasswd: Option<(&str, &str)>) -> Self {
        ensure_tool("docker-registry", "docker-registry");
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind((ip, 0)).unwrap().local_addr().unwrap().port();
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).unwrap();
        let mut config = format!(
            "version: 0.1\nlog: {{level: warn}}\nstorage: {{filesystem: {{rootdirectory: {}}}, delete: {{enabled: true}}}}\nhttp: {{addr: {ip}:{port}}}\n",
            storage.display()
        );
        if let Some((user, pass)) = htpasswd {
            ensure_tool("htpasswd", "apache2-utils");
            let out = Command::new("htpasswd").args(["-Bbn", user, pass]).output().unwrap();
            assert!(out.status.success());
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, out.stdout).unwrap();
            config.push_str(&format!("auth: {{htpasswd: {{realm: r, path: {}}}}}\n", file.display()));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect((ip, port)).is_err() {
            assert!(Instant::now() < deadline, "registry did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        TestRegistry { child, port, ip, dir }
    }

    /// `ip:port`, as image references name it.
    pub fn host(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    pub fn reference(&self, name: &str) -> ImageReference {
        ImageReference::parse(&format!("{}/{name}", self.host())).unwrap()
    }

    pub fn skopeo_inspect(&self, name: &str, creds: Option<&str>) -> Result<Value, String> {
        ensure_tool("skopeo", "skopeo");
        let mut cmd = Command::new("skopeo");
        cmd.args(["inspect", "--tls-verify=false"]);
        if let Some(creds) = creds {
            cmd.args(["--creds", creds]);
        }
        let out = cmd.arg(format!("docker://{}/{name}", self.host())).output().unwrap();
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).to_string());
        }
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    }

    /// The manifest of `name` as the registry stores it (`skopeo inspect --raw`).
    pub fn skopeo_raw_manifest(&self, name: &str) -> Value {
        ensure_tool("skopeo", "skopeo");
        let out = Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{}/{name}", self.host()))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// `skopeo copy` into an OCI layout; returns (manifest, config, layer tars uncompressed).
    pub fn skopeo_copy(&self, name: &str) -> (Value, Value, Vec<Vec<u8>>) {
        let layout = self.dir.path().join(format!("oci-{}", name.replace(['/', ':'], "_")));
        let out = Command::new("skopeo")
            .args(["copy", "--src-tls-verify=false"])
            .arg(format!("docker://{}/{name}", self.host()))
            .arg(format!("oci:{}:t", layout.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo copy: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let blob = |digest: &str| {
            std::fs::read(layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))).unwrap()
        };
        let index: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
        let manifest: Value = serde_json::from_slice(&blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap();
        let config: Value = serde_json::from_slice(&blob(manifest["config"]["digest"].as_str().unwrap())).unwrap();
        let layers = manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let data = blob(l["digest"].as_str().unwrap());
                if data.starts_with(&[0x1f, 0x8b]) {
                    let mut out = Vec::new();
                    flate2::read::GzDecoder::new(data.as_slice())
                        .read_to_end(&mut out)
                        .unwrap();
                    out
                } else {
                    data
                }
            })
            .collect();
        (manifest, config, layers)
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tiny busybox root filesystem as a tar file.
pub fn busybox_rootfs(dir: &Path) -> PathBuf {
    ensure_tool("busybox", "busybox-static");
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap();
    std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
    // What build commands in a build container use (the builder image of
    // the static and generic stacks is this base).
    for applet in [
        "sh", "cat", "ls", "echo", "env", "sleep", "mkdir", "touch", "rm", "mv", "cp", "head", "tr", "wc", "grep",
        "id", "nc", "ps", "dd", "sed", "true", "false", "test",
    ] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    let tar_path = dir.join("rootfs.tar");
    let mut builder = tar::Builder::new(std::fs::File::create(&tar_path).unwrap());
    builder.follow_symlinks(false);
    builder.append_dir_all(".", &root).unwrap();
    builder.finish().unwrap();
    tar_path
}

/// Copies `reference` into an OCI layout with skopeo, unpacks it with umoci and
/// runs it with runc (Debian's packages); returns what the container printed.
pub fn run_image(reference: &str, tmp: &Path, creds: Option<&str>) -> String {
    ensure_tool("umoci", "umoci");
    ensure_tool("runc", "runc");
    ensure_tool("skopeo", "skopeo");
    let tag = reference.replace(['/', ':', '@'], "_");
    let layout = tmp.join(format!("layout-{tag}"));
    let mut copy = Command::new("skopeo");
    copy.args(["copy", "--src-tls-verify=false"]);
    if let Some(c) = creds {
        copy.args(["--src-creds", c]);
    }
    let out = copy
        .arg(format!("docker://{reference}"))
        .arg(format!("oci:{}:run", layout.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bundle = tmp.join(format!("bundle-{tag}"));
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
    spec["process"]["terminal"] = Value::Bool(false);
    std::fs::write(&config_path, serde_json::to_vec(&spec).unwrap()).unwrap();
    let id = format!(
        "prism-test-{}-{}",
        std::process::id(),
        tag.len() + tmp.as_os_str().len()
    );
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
        "runc run: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
