//! A real load balancer in front of several `prism serve` instances: Debian's
//! nginx (`apt-get install nginx`, which `scripts/test.sh` does), configured
//! as a production setup for Prism would be: round robin, a failed instance
//! skipped for two seconds, a request that could not reach an instance sent
//! to the next one (a POST only when it was never sent: nginx's default,
//! kept because many of Prism's POSTs take no idempotency key; a client
//! resends a keyed POST itself after a 502), and no buffering so live
//! streams (server-sent events) flow.
//!
//! Its access log records, per request, every instance nginx tried; a
//! request with more than one was retried by the load balancer.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, TempDir};

/// Where Debian's package puts the binary.
pub const NGINX: &str = "/usr/sbin/nginx";

/// Whether nginx is installed; `None`, or why not and how to install it.
pub fn unavailable() -> Option<String> {
    (!Path::new(NGINX).exists())
        .then(|| format!("{NGINX} is missing: `apt-get install nginx` (scripts/test.sh installs it)"))
}

pub struct Nginx {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    dir: TempDir,
}

/// One line of the access log.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub uri: String,
    pub status: u16,
    /// Every instance tried, in order (more than one: the load balancer retried).
    pub upstreams: Vec<String>,
    pub idempotency_key: Option<String>,
}

impl Nginx {
    /// nginx balancing over `upstreams` (`host:port` each), on a free port.
    pub fn start(upstreams: &[String]) -> Nginx {
        let dir = TempDir::new("nginx");
        let port = free_port();
        for d in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        std::fs::write(dir.join("nginx.conf"), config(dir.path(), port, upstreams)).unwrap();
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start nginx");
        let lb = Nginx {
            child,
            base: format!("http://127.0.0.1:{port}"),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not listen; its log: {}",
                std::fs::read_to_string(lb.dir.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        lb
    }

    /// Every request nginx has logged so far.
    pub fn access_log(&self) -> Vec<Logged> {
        std::fs::read_to_string(self.dir.join("access.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(parse_line)
            .collect()
    }

    pub fn error_log_path(&self) -> PathBuf {
        self.dir.join("error.log")
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGQUIT is nginx's graceful stop; SIGKILL of the master would leave its worker.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(dir: &Path, port: u16, upstreams: &[String]) -> String {
    let d = dir.display();
    // As root the master would hand its worker to `nobody`, who cannot write
    // the temporary directories made here.
    let user = if unsafe { libc::geteuid() } == 0 {
        "user root;"
    } else {
        ""
    };
    let servers: String = upstreams
        .iter()
        .map(|u| format!("        server {u} max_fails=1 fail_timeout=2s;\n"))
        .collect();
    format!(
        r#"{user}
daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 2048; }}
http {{
    log_format prism '$request_method $request_uri $status "$upstream_addr" "$http_idempotency_key"';
    access_log {d}/access.log prism;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    client_max_body_size 2m;
    upstream prism {{
{servers}        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://prism;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_connect_timeout 1s;
            proxy_read_timeout 1h;
            proxy_buffering off;
            proxy_next_upstream error timeout http_502 http_503;
            proxy_next_upstream_tries 3;
        }}
    }}
}}
"#
    )
}

/// `POST /api/v1/releases 201 "127.0.0.1:1, 127.0.0.1:2" "key"`.
fn parse_line(line: &str) -> Option<Logged> {
    let mut it = line.splitn(4, ' ');
    let method = it.next()?.to_owned();
    let uri = it.next()?.to_owned();
    let status = it.next()?.parse().ok()?;
    let rest = it.next()?;
    let mut quoted = rest.split('"').skip(1).step_by(2);
    // Tries within the upstream group are separated by ", ", a hand-over
    // to another group by " : ".
    let upstreams = quoted
        .next()?
        .split(" : ")
        .flat_map(|s| s.split(", "))
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "-")
        .map(str::to_owned)
        .collect();
    let key = quoted.next().filter(|k| !k.is_empty() && *k != "-").map(str::to_owned);
    Some(Logged {
        method,
        uri,
        status,
        upstreams,
        idempotency_key: key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retried_request_lists_every_instance_tried() {
        let l = parse_line(r#"POST /api/v1/releases 201 "127.0.0.1:4001, 127.0.0.1:4002" "k-1""#).unwrap();
        assert_eq!(l.upstreams, ["127.0.0.1:4001", "127.0.0.1:4002"]);
        assert_eq!(l.idempotency_key.as_deref(), Some("k-1"));
        assert_eq!((l.method.as_str(), l.status), ("POST", 201));
        // A request passed to another upstream group after a 502 is logged with " : ".
        let l = parse_line(r#"GET /healthz 200 "127.0.0.1:4001 : 127.0.0.1:4003" "-""#).unwrap();
        assert_eq!(l.upstreams, ["127.0.0.1:4001", "127.0.0.1:4003"]);
        assert_eq!(l.idempotency_key, None);
        let l = parse_line(r#"GET /x 502 "-" "-""#).unwrap();
        assert!(l.upstreams.is_empty());
    }
}
