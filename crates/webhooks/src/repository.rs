//! Which application a push is for, when one webhook serves a whole
//! project: the pushed repository's URLs (clone, SSH, web) compared with an
//! application's git URL by host and path, whatever the scheme, user name,
//! port or `.git` suffix. A push still needs the project webhook's
//! signature; this only picks the applications it releases.

/// `host/owner/repo`, lowercase, from any of the forms forges write:
/// `https://user@Host:3000/owner/repo.git`, `ssh://git@host:22/owner/repo`,
/// `git@host:owner/repo.git`, `git://host/owner/repo`. None for text that
/// is no repository address.
pub fn repository_key(url: &str) -> Option<String> {
    let u = url.trim();
    let (authority, path) = if let Some((scheme, rest)) = u.split_once("://") {
        // The schemes forges serve repositories over; `file://` names no host.
        if !["http", "https", "ssh", "git", "git+ssh", "ssh+git"].contains(&scheme.to_ascii_lowercase().as_str()) {
            return None;
        }
        match rest.split_once('/') {
            Some((a, p)) => (a, p),
            None => return None,
        }
    } else if let Some((a, p)) = u.split_once(':') {
        // scp-like `git@host:owner/repo`; `/a:b` is a path, not one.
        if a.contains('/') {
            return None;
        }
        (a, p)
    } else {
        return None;
    };
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        // [::1]:3000
        Some(v6) => v6.split_once(']').map(|(h, _)| h)?,
        None => host_port.split(':').next().unwrap_or_default(),
    };
    let path = path.trim_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path).trim_end_matches('/');
    if host.is_empty() || path.is_empty() {
        return None;
    }
    Some(format!("{}/{}", host.to_ascii_lowercase(), path.to_ascii_lowercase()))
}

/// Whether the pushed repository (any of its URLs) is `git_url`.
pub fn is_repository(pushed: &[String], git_url: &str) -> bool {
    let Some(want) = repository_key(git_url) else {
        return false;
    };
    pushed.iter().filter_map(|u| repository_key(u)).any(|k| k == want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_forges_write_name_the_same_repository() {
        let same = [
            "https://github.com/shop/web.git",
            "https://github.com/shop/web",
            "https://ci-bot@GitHub.com/shop/web.git/",
            "ssh://git@github.com:22/shop/web.git",
            "git@github.com:shop/web.git",
            "git://github.com/Shop/Web",
            "http://github.com:80/shop/web.git",
        ];
        for u in same {
            assert_eq!(repository_key(u).as_deref(), Some("github.com/shop/web"), "{u}");
        }
        assert_eq!(
            repository_key("http://[::1]:3000/shop/web.git").as_deref(),
            Some("::1/shop/web")
        );
    }

    #[test]
    fn other_repositories_and_non_urls_do_not_match() {
        let pushed = vec![
            "http://127.0.0.1:3000/shop/web.git".to_string(),
            "git@127.0.0.1:shop/web.git".to_string(),
        ];
        assert!(is_repository(&pushed, "http://127.0.0.1:3000/shop/web.git"));
        assert!(is_repository(&pushed, "https://127.0.0.1/shop/web"));
        assert!(!is_repository(&pushed, "http://127.0.0.1:3000/shop/web-api.git"));
        assert!(!is_repository(&pushed, "http://127.0.0.1:3000/blog/web.git"));
        assert!(!is_repository(&pushed, "http://127.0.0.2:3000/shop/web.git"));
        assert!(!is_repository(&[], "http://127.0.0.1:3000/shop/web.git"));
        for junk in [
            "",
            "web",
            "https://host",
            "https://host/",
            "/srv/git/web.git",
            ":x",
            "file://github.com/shop/web.git",
            "ftp://github.com/shop/web.git",
        ] {
            assert_eq!(repository_key(junk), None, "{junk:?}");
            assert!(!is_repository(&pushed, junk), "{junk:?}");
        }
    }
}
