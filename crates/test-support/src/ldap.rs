//! A real OpenLDAP server (Debian's `slapd`, installed by scripts/test.sh)
//! on a free loopback port, holding people in groups: `alice` (groups
//! `shop-ops` and `shop-dev`), `bob` (`shop-dev`) and `nopass` (no password).
//! The directory's admin (`cn=admin,dc=example,dc=com` / `admin-pw`) is the
//! service account Prism binds as; [`Slapd::modify`] changes entries the way
//! a directory admin would (`ldapmodify`). Stopped on `Drop`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, TempDir};

pub const BASE: &str = "dc=example,dc=com";
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=com";
pub const ADMIN_PASSWORD: &str = "admin-pw";
pub const PEOPLE: &str = "ou=people,dc=example,dc=com";
pub const GROUPS: &str = "ou=groups,dc=example,dc=com";

const DATA: &str = "\
dn: dc=example,dc=com
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=com
objectClass: organizationalUnit
ou: groups

dn: uid=alice,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: alice
cn: Alice Ops
sn: Ops
displayName: Alice Ops
mail: alice@example.com
userPassword: alice-pw

dn: uid=bob,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: bob
cn: Bob Dev
sn: Dev
mail: bob@example.com
userPassword: bob-pw

dn: uid=nopass,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: nopass
cn: No Password
sn: Pass

dn: cn=shop-ops,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: shop-ops
member: uid=alice,ou=people,dc=example,dc=com

dn: cn=shop-dev,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: shop-dev
member: uid=alice,ou=people,dc=example,dc=com
member: uid=bob,ou=people,dc=example,dc=com
";

pub struct Slapd {
    child: Child,
    pub port: u16,
    _dir: TempDir,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Slapd {
    /// Starts slapd with the people and groups above.
    pub fn start() -> Slapd {
        assert!(
            Path::new("/usr/sbin/slapd").exists(),
            "slapd (Debian's slapd) is installed by scripts/test.sh"
        );
        let dir = TempDir::new("slapd");
        let d = dir.path();
        std::fs::create_dir_all(d.join("db")).unwrap();
        let conf = d.join("slapd.conf");
        std::fs::write(
            &conf,
            format!(
                "include /etc/ldap/schema/core.schema\n\
                 include /etc/ldap/schema/cosine.schema\n\
                 include /etc/ldap/schema/inetorgperson.schema\n\
                 pidfile {0}/slapd.pid\n\
                 modulepath /usr/lib/ldap\n\
                 moduleload back_mdb\n\
                 database mdb\n\
                 maxsize 10485760\n\
                 suffix \"{BASE}\"\n\
                 rootdn \"{ADMIN_DN}\"\n\
                 rootpw {ADMIN_PASSWORD}\n\
                 directory {0}/db\n\
                 access to attrs=userPassword by anonymous auth by * none\n\
                 access to * by * read\n",
                d.display()
            ),
        )
        .unwrap();
        std::fs::write(d.join("data.ldif"), DATA).unwrap();
        let st = Command::new("/usr/sbin/slapadd")
            .arg("-f")
            .arg(&conf)
            .arg("-l")
            .arg(d.join("data.ldif"))
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "slapadd");
        let port = free_port();
        let child = Command::new("/usr/sbin/slapd")
            .arg("-f")
            .arg(&conf)
            .arg("-h")
            .arg(format!("ldap://127.0.0.1:{port}/"))
            .args(["-d", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "slapd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Slapd { child, port, _dir: dir }
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// Applies an LDIF change as the directory's admin (`ldapmodify`, from
    /// Debian's ldap-utils, installed with slapd by scripts/test.sh).
    pub fn modify(&self, ldif: &str) {
        use std::io::Write;
        let mut child = Command::new("ldapmodify")
            .args(["-x", "-H", &self.url(), "-D", ADMIN_DN, "-w", ADMIN_PASSWORD])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ldapmodify (Debian's ldap-utils)");
        child.stdin.take().unwrap().write_all(ldif.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ldapmodify: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
