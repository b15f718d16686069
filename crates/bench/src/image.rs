//! `prism-bench image`: Prism's image step (append a 50 MiB artifact onto a
//! base and push) beside `buildah bud` + `buildah push` of the equivalent
//! Containerfile, to the same real registry, in the same run: time and the
//! bytes each added to the registry.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prism_image::{
    append_layer, build_base, build_layer, BaseRecipe, ConfigChanges, ImageReference, LayerSpec, Registries,
};

struct Registry {
    child: Child,
    addr: String,
    data: PathBuf,
}

impl Registry {
    async fn start(dir: &Path) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let data = dir.join("registry");
        let cfg = dir.join("registry.yml");
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nstorage: {{filesystem: {{rootdirectory: {}}}}}\nhttp: {{addr: 127.0.0.1:{port}}}\n",
                data.display()
            ),
        )?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !reqwest::get(format!("http://{addr}/v2/"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            anyhow::ensure!(Instant::now() < deadline, "registry did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Registry { child, addr, data })
    }

    /// Bytes of blobs stored: what pushes have added, deduplicated as the registry keeps them.
    fn stored_bytes(&self) -> u64 {
        fn walk(p: &Path) -> u64 {
            std::fs::read_dir(p)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => walk(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        }
        walk(&self.data.join("docker/registry/v2/blobs"))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.output()?;
    anyhow::ensure!(
        out.status.success(),
        "{:?}: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

pub async fn run_bench(megabytes: usize) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("prism-bench-image-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let reg = Registry::start(&dir).await?;
    let registries = Registries::new();

    // A first-tier base from a busybox root filesystem, pushed by Prism.
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin"))?;
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))?;
    run(Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(dir.join("rootfs.tar"))
        .arg("."))?;
    let base = ImageReference::parse(&format!("{}/base:1", reg.addr))?;
    build_base(
        &registries,
        &BaseRecipe::new(dir.join("rootfs.tar"), ConfigChanges::default()),
        &base,
    )
    .await?;

    println!("prism-bench image: append a {megabytes} MiB artifact onto a base and push, same registry, same run");
    println!("(3 rounds, each with a new artifact so nothing is in the registry yet; medians below)");
    println!(
        "{:<10} {:>6} {:>9} {:>16} {:>16}",
        "tool", "round", "seconds", "bytes uploaded", "registry growth"
    );
    let storage = dir.join("buildah");
    let ws = dir.join("workspace");
    std::fs::create_dir_all(&ws)?;
    let buildah = |args: &[&str]| {
        let mut c = Command::new("buildah");
        c.arg("--storage-driver")
            .arg("vfs")
            .arg("--root")
            .arg(storage.join("root"))
            .arg("--runroot")
            .arg(storage.join("run"));
        c.args(args).env("BUILDAH_ISOLATION", "chroot").current_dir(&ws);
        c
    };
    let (mut prism_times, mut buildah_times, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let mut last = None;
    for round in 1..=3u64 {
        // The artifact: random bytes (a new seed each round), so compression cannot shortcut it.
        let mut data = vec![0u8; megabytes << 20];
        let mut x: u64 = 0x9e3779b97f4a7c15 ^ round.wrapping_mul(0x2545_f491_4f6c_dd1d);
        for chunk in data.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        std::fs::write(ws.join("app.bin"), &data)?;
        drop(data);
        std::fs::write(
            ws.join("Containerfile"),
            format!("FROM {}/base:1\nCOPY app.bin /app/\n", reg.addr),
        )?;

        let before = reg.stored_bytes();
        let started = Instant::now();
        let layer = build_layer(&LayerSpec::new(&ws, ["app.bin"], "/app"))?;
        let layer_s = started.elapsed().as_secs_f64();
        let target = ImageReference::parse(&format!("{}/app:prism-{round}", reg.addr))?;
        let pushed = append_layer(
            &registries,
            &base,
            &layer,
            &ConfigChanges::default().with_release(&format!("r{round}"), "abc1234", "app"),
            &target,
        )
        .await?;
        let prism_s = started.elapsed().as_secs_f64();
        let prism_growth = reg.stored_bytes() - before;
        println!(
            "{:<10} {:>6} {:>9.2} {:>16} {:>16}   (layer {layer_s:.2} s, push {:.2} s)",
            "prism",
            round,
            prism_s,
            pushed.bytes_uploaded,
            prism_growth,
            prism_s - layer_s
        );

        let before = reg.stored_bytes();
        let started = Instant::now();
        let tag = format!("localhost/app:buildah-{round}");
        run(&mut buildah(&[
            "bud",
            "--tls-verify=false",
            "-q",
            "-t",
            &tag,
            "-f",
            "Containerfile",
            ".",
        ]))?;
        run(&mut buildah(&[
            "push",
            "--tls-verify=false",
            "-q",
            &tag,
            &format!("docker://{}/app:buildah-{round}", reg.addr),
        ]))?;
        let buildah_s = started.elapsed().as_secs_f64();
        let buildah_growth = reg.stored_bytes() - before;
        println!(
            "{:<10} {:>6} {:>9.2} {:>16} {:>16}",
            "buildah", round, buildah_s, "-", buildah_growth
        );
        prism_times.push(prism_s);
        buildah_times.push(buildah_s);
        ratios.push(prism_s / buildah_s);
        last = Some((pushed, layer.data.len()));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
        v[v.len() / 2]
    };
    let (p, b, r) = (
        median(&mut prism_times),
        median(&mut buildah_times),
        median(&mut ratios),
    );
    let (pushed, layer_len) = last.expect("three rounds");
    println!(
        "median: prism {p:.2} s, buildah {b:.2} s; prism/buildah time ratio {r:.2}x ({:.1}x faster)",
        1.0 / r
    );
    println!(
        "prism's blobs per push: {} uploaded (the new layer {} B and the config), base layers: {} mounted, {} already present, {} uploaded",
        pushed.blobs_uploaded,
        layer_len,
        pushed.blobs_mounted,
        pushed.blobs_present,
        // Every blob is mounted, present or uploaded; two uploads are the new layer and the config.
        if pushed.blobs_uploaded == 2 { "none".to_string() } else { format!("{} blobs", pushed.blobs_uploaded - 2) }
    );
    let _ = std::fs::remove_dir_all(&storage);
    let _ = Command::new("rm").arg("-rf").arg(&dir).status();
    Ok(())
}
