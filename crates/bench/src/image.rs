//! `prism-bench image`: Prism's image step (the artifacts as one layer on a
//! base, pushed) beside `buildah bud` + `buildah push` of the equivalent
//! Containerfile, to the same real registry, in the same run: time and the
//! bytes each added to the registry, for three artifacts as builds make
//! them: random bytes (what compression cannot shrink), a `node_modules`-like
//! tree (about 20,000 small text files, 150 MiB) and a fat jar (one
//! compressible 80 MiB file). Then the same artifact pushed again: what
//! Prism uploads for a layer the registry already has. Each with gzip
//! layers (both tools' default) and with zstd layers (an application's
//! opt-in; `buildah push --compression-format zstd` beside it).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::report::Figure;
use prism_image::{
    append_layer, build_base, build_layer, BaseRecipe, Compression, ConfigChanges, ImageReference, LayerSpec,
    Registries,
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

/// What a round pushes: a path under the workspace and how it was made.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Artifact {
    Random,
    NodeModules,
    FatJar,
}

impl Artifact {
    pub fn parse(s: &str) -> anyhow::Result<Artifact> {
        Ok(match s {
            "random" => Artifact::Random,
            "node-modules" => Artifact::NodeModules,
            "fat-jar" => Artifact::FatJar,
            other => anyhow::bail!("--artifacts: unknown artifact {other:?} (random, node-modules, fat-jar)"),
        })
    }

    fn name(self) -> &'static str {
        match self {
            Artifact::Random => "random",
            Artifact::NodeModules => "node-modules",
            Artifact::FatJar => "fat-jar",
        }
    }

    /// The artifact's path in the workspace.
    fn path(self) -> &'static str {
        match self {
            Artifact::Random => "app.bin",
            Artifact::NodeModules => "node_modules",
            Artifact::FatJar => "app.jar",
        }
    }

    /// Writes a new artifact (its content depends on `seed`) into `ws`.
    fn write(self, ws: &Path, seed: u64, random_mib: usize) -> anyhow::Result<()> {
        let path = ws.join(self.path());
        let _ = std::fs::remove_dir_all(&path);
        let _ = std::fs::remove_file(&path);
        let mut rng = XorShift::new(seed);
        match self {
            Artifact::Random => {
                let mut data = vec![0u8; random_mib << 20];
                for chunk in data.chunks_mut(8) {
                    chunk.copy_from_slice(&rng.next().to_le_bytes()[..chunk.len()]);
                }
                std::fs::write(path, data)?;
            }
            Artifact::NodeModules => {
                // 1,000 packages of 20 files: package.json, README, index.js and
                // lib/*.js, 7.5 KiB on average, 150 MiB in all.
                for p in 0..1000 {
                    let dir = path.join(format!("pkg-{p:04}"));
                    std::fs::create_dir_all(dir.join("lib"))?;
                    std::fs::write(
                        dir.join("package.json"),
                        format!(
                            "{{\"name\": \"pkg-{p:04}\", \"version\": \"1.{}.{}\", \"main\": \"index.js\"}}\n",
                            rng.below(20),
                            rng.below(50)
                        ),
                    )?;
                    std::fs::write(dir.join("README.md"), source_text(&mut rng, 4 << 10))?;
                    std::fs::write(dir.join("index.js"), source_text(&mut rng, 6 << 10))?;
                    for f in 0..17 {
                        let size = 2048 + rng.below(12 << 10) as usize;
                        std::fs::write(dir.join(format!("lib/m{f}.js")), source_text(&mut rng, size))?;
                    }
                }
            }
            Artifact::FatJar => {
                std::fs::write(path, source_text(&mut rng, 80 << 20))?;
            }
        }
        Ok(())
    }
}

/// A small deterministic generator (the artifacts differ per seed, never per run).
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        XorShift(0x9e37_79b9_7f4a_7c15 ^ seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `len` bytes of text that compresses like source code (about 4:1 with gzip):
/// words from a vocabulary, identifiers with numbers, punctuation and indentation.
fn source_text(rng: &mut XorShift, len: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "function",
        "return",
        "const",
        "let",
        "var",
        "if",
        "else",
        "for",
        "while",
        "this",
        "new",
        "require",
        "module",
        "exports",
        "async",
        "await",
        "class",
        "extends",
        "null",
        "undefined",
        "true",
        "false",
        "value",
        "options",
        "callback",
        "error",
        "result",
        "length",
        "push",
        "map",
        "filter",
        "reduce",
        "Object",
        "Array",
        "String",
        "Promise",
        "prototype",
        "typeof",
        "throw",
        "catch",
        "try",
        "import",
    ];
    let mut out = Vec::with_capacity(len + 64);
    while out.len() < len {
        let indent = rng.below(4) as usize * 2;
        out.extend(std::iter::repeat_n(b' ', indent));
        for _ in 0..(3 + rng.below(8)) {
            let r = rng.next();
            match r % 7 {
                0 => out.extend_from_slice(format!("x{}", (r >> 8) % 5000).as_bytes()),
                1 => out.extend_from_slice(format!("{}", (r >> 8) % 100_000).as_bytes()),
                _ => out.extend_from_slice(WORDS[((r >> 8) % WORDS.len() as u64) as usize].as_bytes()),
            }
            out.push([b' ', b' ', b'.', b'(', b',', b' '][((r >> 40) % 6) as usize]);
        }
        out.extend_from_slice(b";\n");
    }
    out.truncate(len);
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// `gzip` or `zstd`.
pub fn parse_compression(s: &str) -> anyhow::Result<Compression> {
    match s {
        "gzip" => Ok(Compression::Gzip),
        "zstd" => Ok(Compression::Zstd),
        other => anyhow::bail!("--compressions: unknown compression {other:?} (gzip or zstd)"),
    }
}

fn compression_name(c: Compression) -> &'static str {
    match c {
        Compression::Zstd => "zstd",
        Compression::None => "none",
        Compression::Gzip => "gzip",
    }
}

pub async fn run_bench(megabytes: usize, artifacts: &[Artifact], compressions: &[Compression]) -> anyhow::Result<()> {
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

    println!("prism-bench image: the artifact as a layer on a base, pushed; Prism beside buildah bud + push, same registry, same run");
    println!("(3 rounds per artifact, each with new content so nothing is in the registry yet; medians)");
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
    println!(
        "{:<18} {:>9} {:>9} {:>8} | {:>13} {:>13} {:>7} | {:>12}",
        "artifact", "prism s", "buildah s", "speedup", "prism bytes", "buildah bytes", "size", "again bytes"
    );
    let mut seed = 0u64;
    for (&artifact, &compression) in artifacts.iter().flat_map(|a| compressions.iter().map(move |c| (a, c))) {
        let zstd = compression == Compression::Zstd;
        let (mut prism_times, mut buildah_times, mut prism_bytes, mut buildah_bytes) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut last = None;
        for round in 1..=3u64 {
            seed += 1;
            artifact.write(&ws, seed, megabytes)?;
            std::fs::write(
                ws.join("Containerfile"),
                format!("FROM {}/base:1\nCOPY {p} /app/{p}\n", reg.addr, p = artifact.path()),
            )?;
            let name = artifact.name();

            let before = reg.stored_bytes();
            let started = Instant::now();
            let mut spec = LayerSpec::new(&ws, [artifact.path()], "/app");
            spec.compression = compression;
            let layer = build_layer(&spec)?;
            let target = ImageReference::parse(&format!("{}/{name}:prism-{round}", reg.addr))?;
            let changes = ConfigChanges::default().with_release(&format!("r{round}"), "abc1234", "app");
            let pushed = append_layer(&registries, &base, &layer, &changes, &target).await?;
            prism_times.push(started.elapsed().as_secs_f64());
            prism_bytes.push((reg.stored_bytes() - before) as f64);

            let before = reg.stored_bytes();
            let started = Instant::now();
            let tag = format!("localhost/{name}:buildah-{round}");
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
            let destination = format!("docker://{}/{name}:buildah-{round}", reg.addr);
            let mut push = vec!["push", "--tls-verify=false", "-q"];
            if zstd {
                push.extend(["--compression-format", "zstd"]);
            }
            push.extend([tag.as_str(), destination.as_str()]);
            run(&mut buildah(&push))?;
            buildah_times.push(started.elapsed().as_secs_f64());
            buildah_bytes.push((reg.stored_bytes() - before) as f64);
            let _ = buildah(&["rmi", "-f", &tag]).output();
            last = Some((layer, changes, pushed));
        }
        // The same artifact again (a rebuild of an unchanged commit): what goes up the wire.
        let (layer, changes, first) = last.expect("three rounds");
        let again = ImageReference::parse(&format!(
            "{}/{}:again-{}",
            reg.addr,
            artifact.name(),
            compression_name(compression)
        ))?;
        let second = append_layer(&registries, &base, &layer, &changes, &again).await?;
        anyhow::ensure!(
            second.manifest_digest == first.manifest_digest,
            "the same artifact gave another image: {} vs {}",
            second.manifest_digest,
            first.manifest_digest
        );
        let (p, b) = (median(prism_times), median(buildah_times));
        let (pb, bb) = (median(prism_bytes), median(buildah_bytes));
        println!(
            "{:<18} {:>9.2} {:>9.2} {:>7.1}x | {:>13.0} {:>13.0} {:>6.2}x | {:>12}",
            format!("{} {}", artifact.name(), compression_name(compression)),
            p,
            b,
            b / p,
            pb,
            bb,
            pb / bb,
            second.bytes_uploaded
        );
        const MIB: f64 = 1024.0 * 1024.0;
        let what = match artifact {
            Artifact::Random => format!("random bytes, {megabytes} MiB"),
            Artifact::NodeModules => "node_modules tree, 20,000 files, 150 MiB".into(),
            Artifact::FatJar => "fat jar, 80 MiB, compressible".into(),
        };
        let case = format!("{what} ({} layers)", compression_name(compression));
        Figure::new("image", &case, "layer + push time", p, "s")
            .beside("buildah bud + push", b, p / b)
            .record();
        Figure::new("image", &case, "bytes added to the registry", pb / MIB, "MiB")
            .beside("buildah bud + push", bb / MIB, pb / bb)
            .record();
        Figure::new(
            "image",
            &case,
            "bytes uploaded pushing it again",
            second.bytes_uploaded as f64,
            "B",
        )
        .record();
    }
    println!("(speedup: buildah's time / Prism's; size: Prism's pushed bytes / buildah's; again: bytes Prism uploads pushing the same artifact again)");
    let _ = Command::new("rm").arg("-rf").arg(&storage).status();
    let _ = Command::new("rm").arg("-rf").arg(&dir).status();
    Ok(())
}
