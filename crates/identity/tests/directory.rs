//! LDAP login against a real OpenLDAP server (Debian's `slapd`, test-support's
//! `ldap::Slapd`) holding users in groups.

use std::time::Duration;

use prism_domain::Role;
use prism_identity::{authenticate, grants, GroupRule, LdapConfig, LdapError, LdapSecurity};
use prism_test_support::ldap::Slapd;

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
    let s = Slapd::start();
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
    let s = Slapd::start();
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
    let port = prism_test_support::free_port();
    let err = authenticate(&config(port), "alice", "alice-pw").await.unwrap_err();
    assert!(matches!(err, LdapError::Unavailable(_)), "{err:?}");
    let s = Slapd::start();
    let mut cfg = config(s.port);
    cfg.bind_password = Some("not-the-admin-pw".into());
    let err = authenticate(&cfg, "alice", "alice-pw").await.unwrap_err();
    assert!(
        matches!(err, LdapError::Unavailable(ref m) if m.contains("service account")),
        "{err:?}"
    );
    assert!(!format!("{cfg:?}").contains("not-the-admin-pw"));
}
