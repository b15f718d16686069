//! LDAP login against a real OpenLDAP server (Debian's `slapd`) holding
//! users in groups.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prism_domain::Role;
use prism_identity::{authenticate, grants, GroupRule, LdapConfig, LdapError, LdapSecurity};

struct Slapd {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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

fn start() -> Slapd {
    assert!(
        Path::new("/usr/sbin/slapd").exists(),
        "slapd (Debian's slapd) is installed by scripts/test.sh"
    );
    let dir = tempfile::tempdir().unwrap();
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
             suffix \"dc=example,dc=com\"\n\
             rootdn \"cn=admin,dc=example,dc=com\"\n\
             rootpw admin-pw\n\
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
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
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

fn config(port: u16) -> LdapConfig {
    LdapConfig {
        url: format!("ldap://127.0.0.1:{port}"),
        security: LdapSecurity::Plain,
        bind_dn: Some("cn=admin,dc=example,dc=com".into()),
        bind_password: Some("admin-pw".into()),
        user_base: "ou=people,dc=example,dc=com".into(),
        user_filter: "(&(objectClass=inetOrgPerson)(uid={username}))".into(),
        group_base: "ou=groups,dc=example,dc=com".into(),
        group_filter: "(member={dn})".into(),
        group_name_attribute: "cn".into(),
        timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn the_directory_checks_passwords_and_names_groups() {
    let s = start();
    let cfg = config(s.port);
    let alice = authenticate(&cfg, "alice", "alice-pw").await.unwrap();
    assert_eq!(alice.username, "alice");
    assert_eq!(alice.dn, "uid=alice,ou=people,dc=example,dc=com");
    assert_eq!(alice.display_name.as_deref(), Some("Alice Ops"));
    assert_eq!(alice.email.as_deref(), Some("alice@example.com"));
    assert_eq!(alice.groups, ["shop-dev", "shop-ops"]);
    let rules = vec![
        GroupRule {
            group: "shop-ops".into(),
            project: Some("shop".into()),
            role: Some(Role::Operator),
            admin: false,
        },
        GroupRule {
            group: "shop-dev".into(),
            project: Some("shop".into()),
            role: Some(Role::Developer),
            admin: false,
        },
    ];
    let g = grants(&alice.groups, &rules);
    assert!(g.projects["shop"].contains(&Role::Operator));
    let bob = authenticate(&cfg, "bob", "bob-pw").await.unwrap();
    assert_eq!(bob.groups, ["shop-dev"]);
    assert!(!grants(&bob.groups, &rules).projects["shop"].contains(&Role::Operator));

    assert_eq!(
        authenticate(&cfg, "alice", "wrong").await,
        Err(LdapError::InvalidCredentials)
    );
    assert_eq!(
        authenticate(&cfg, "nobody", "x").await,
        Err(LdapError::InvalidCredentials)
    );
    // An empty password would be an anonymous bind that "succeeds".
    assert_eq!(
        authenticate(&cfg, "alice", "").await,
        Err(LdapError::InvalidCredentials)
    );
    assert_eq!(
        authenticate(&cfg, "nopass", "").await,
        Err(LdapError::InvalidCredentials)
    );
}

#[tokio::test]
async fn filter_metacharacters_in_a_username_are_only_characters() {
    let s = start();
    let cfg = config(s.port);
    for hostile in ["*)(uid=*", "*", "alice)(|(uid=*", "a*", "alice\\2a"] {
        assert_eq!(
            authenticate(&cfg, hostile, "alice-pw").await,
            Err(LdapError::InvalidCredentials),
            "{hostile}"
        );
    }
}

#[tokio::test]
async fn an_unreachable_directory_or_refused_service_account_is_unavailable() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let err = authenticate(&config(port), "alice", "alice-pw").await.unwrap_err();
    assert!(matches!(err, LdapError::Unavailable(_)), "{err:?}");
    let s = start();
    let mut cfg = config(s.port);
    cfg.bind_password = Some("not-the-admin-pw".into());
    let err = authenticate(&cfg, "alice", "alice-pw").await.unwrap_err();
    assert!(
        matches!(err, LdapError::Unavailable(ref m) if m.contains("service account")),
        "{err:?}"
    );
    assert!(!format!("{cfg:?}").contains("not-the-admin-pw"));
}
