//! A push or tag event, read from whichever forge sent it.

use prism_domain::GitRef;
use serde_json::Value;

use crate::verify::{forge_of, Headers};
use crate::Forge;

/// What a push says, the same for every forge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushEvent {
    pub forge: Forge,
    /// The forge's delivery id (a repeated delivery has the same one).
    pub delivery: Option<String>,
    /// `refs/heads/main` or `refs/tags/v1.2` as sent.
    pub full_ref: String,
    /// The branch or tag name (`main`, `v1.2`), checked as a git ref.
    pub name: GitRef,
    pub is_tag: bool,
    /// The commit the ref now points at (40 hex).
    pub commit: String,
    /// The head commit's message: the release's change note.
    pub message: String,
    pub pusher: String,
    /// The repository's clone URLs, for matching the application.
    pub repository_urls: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Not a push or tag event (ping, issue, merge request...): acknowledge and ignore.
    #[error("event {0:?} is not a push; ignored")]
    NotAPush(String),
    /// A branch or tag was deleted: nothing to release.
    #[error("ref {0} was deleted; ignored")]
    Deleted(String),
    #[error("the payload is not what {forge:?} sends: {reason}")]
    Malformed { forge: Forge, reason: String },
}

const ZERO: &str = "0000000000000000000000000000000000000000";

fn s(v: &Value, path: &[&str]) -> Option<String> {
    let mut at = v;
    for p in path {
        at = at.get(p)?;
    }
    at.as_str().map(String::from)
}

/// What the headers say of any delivery, push or not: the forge, the event
/// name and the delivery id (when the forge sent one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope<'a> {
    pub forge: Forge,
    pub event: &'a str,
    pub delivery: Option<&'a str>,
}

/// Reads the envelope from the headers (None: no forge's headers).
pub fn envelope(h: &dyn Headers) -> Option<Envelope<'_>> {
    let forge = forge_of(h)?;
    let (event, delivery) = match forge {
        Forge::Github => (h.get("x-github-event"), h.get("x-github-delivery")),
        Forge::Gitea => (
            h.get("x-gitea-event").or_else(|| h.get("x-forgejo-event")),
            h.get("x-gitea-delivery").or_else(|| h.get("x-forgejo-delivery")),
        ),
        Forge::Gitlab => (
            h.get("x-gitlab-event"),
            h.get("x-gitlab-event-uuid").or_else(|| h.get("webhook-id")),
        ),
    };
    Some(Envelope {
        forge,
        event: event.unwrap_or_default(),
        delivery: delivery.map(str::trim).filter(|d| !d.is_empty()),
    })
}

/// Reads the event; call after [`crate::verify`].
pub fn parse(h: &dyn Headers, body: &[u8]) -> Result<PushEvent, EventError> {
    let Envelope { forge, event, delivery } = envelope(h).ok_or_else(|| EventError::NotAPush("unknown".into()))?;
    let is_push = match forge {
        Forge::Github | Forge::Gitea => event == "push",
        Forge::Gitlab => event == "Push Hook" || event == "Tag Push Hook",
    };
    if !is_push {
        return Err(EventError::NotAPush(event.to_string()));
    }
    let bad = |reason: &str| EventError::Malformed {
        forge,
        reason: reason.to_string(),
    };
    let v: Value = serde_json::from_slice(body).map_err(|e| bad(&format!("not JSON: {e}")))?;
    let full_ref = s(&v, &["ref"]).ok_or_else(|| bad("no ref"))?;
    let after = s(&v, &["after"]).unwrap_or_default();
    let deleted = v.get("deleted").and_then(Value::as_bool).unwrap_or(false) || after == ZERO;
    if deleted {
        return Err(EventError::Deleted(full_ref));
    }
    let (is_tag, short) = if let Some(t) = full_ref.strip_prefix("refs/tags/") {
        (true, t)
    } else if let Some(b) = full_ref.strip_prefix("refs/heads/") {
        (false, b)
    } else {
        return Err(bad("ref is neither a branch nor a tag"));
    };
    let name = GitRef::parse("ref", short).map_err(|e| bad(&e.message))?;
    // For an annotated tag `after` is the tag object's id: the commit is
    // GitLab's checkout_sha, and the head commit's id on GitHub and Gitea.
    let commit = match forge {
        Forge::Gitlab => s(&v, &["checkout_sha"]).unwrap_or(after),
        _ if is_tag => s(&v, &["head_commit", "id"]).filter(|c| is_sha(c)).unwrap_or(after),
        _ => after,
    };
    if !is_sha(&commit) {
        return Err(bad("no 40-hex commit id"));
    }
    let message = match forge {
        Forge::Github | Forge::Gitea => s(&v, &["head_commit", "message"]).or_else(|| last_commit_message(&v, &commit)),
        Forge::Gitlab => s(&v, &["message"])
            .filter(|m| !m.is_empty())
            .or_else(|| last_commit_message(&v, &commit)),
    }
    .unwrap_or_default();
    let pusher = match forge {
        Forge::Github => s(&v, &["pusher", "name"]),
        Forge::Gitea => s(&v, &["pusher", "login"]).or_else(|| s(&v, &["pusher", "username"])),
        Forge::Gitlab => s(&v, &["user_username"]),
    }
    .unwrap_or_default();
    let urls: Vec<String> = match forge {
        Forge::Github | Forge::Gitea => [
            &["repository", "clone_url"][..],
            &["repository", "ssh_url"],
            &["repository", "html_url"],
        ]
        .iter()
        .filter_map(|p| s(&v, p))
        .collect(),
        Forge::Gitlab => [
            &["project", "git_http_url"][..],
            &["project", "git_ssh_url"],
            &["project", "web_url"],
        ]
        .iter()
        .filter_map(|p| s(&v, p))
        .collect(),
    };
    Ok(PushEvent {
        forge,
        delivery: delivery.map(String::from),
        full_ref: full_ref.clone(),
        name,
        is_tag,
        commit: commit.to_ascii_lowercase(),
        message: message.trim().chars().take(5000).collect(),
        pusher,
        repository_urls: urls,
    })
}

fn is_sha(c: &str) -> bool {
    c.len() == 40 && c.bytes().all(|b| b.is_ascii_hexdigit())
}

fn last_commit_message(v: &Value, commit: &str) -> Option<String> {
    v.get("commits")?
        .as_array()?
        .iter()
        .find(|c| c.get("id").and_then(Value::as_str) == Some(commit))
        .and_then(|c| c.get("message")?.as_str().map(String::from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    fn h(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    const SHA: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

    #[test]
    fn github_push_of_a_branch() {
        let body = json!({"ref": "refs/heads/main", "before": ZERO, "after": SHA, "deleted": false,
            "repository": {"clone_url": "https://github.com/shop/web.git", "ssh_url": "git@github.com:shop/web.git"},
            "head_commit": {"id": SHA, "message": "Checkout page\n\nlonger text"}, "pusher": {"name": "dev"}});
        let e = parse(
            &h(&[("x-github-event", "push"), ("x-github-delivery", "d-1")]),
            body.to_string().as_bytes(),
        )
        .unwrap();
        assert_eq!(
            (e.forge, e.is_tag, e.name.as_str(), e.commit.as_str()),
            (Forge::Github, false, "main", SHA)
        );
        assert_eq!(e.message, "Checkout page\n\nlonger text");
        assert_eq!(e.delivery.as_deref(), Some("d-1"));
        assert_eq!(e.pusher, "dev");
        assert!(e
            .repository_urls
            .contains(&"https://github.com/shop/web.git".to_string()));
    }

    #[test]
    fn gitlab_tag_push_uses_checkout_sha() {
        let body = json!({"object_kind": "tag_push", "ref": "refs/tags/v1.2.0", "after": "1111111111111111111111111111111111111111",
            "checkout_sha": SHA, "message": "", "user_username": "ops",
            "project": {"git_http_url": "http://gitlab.local/shop/web.git"},
            "commits": [{"id": SHA, "message": "Release 1.2"}]});
        let e = parse(
            &h(&[("x-gitlab-event", "Tag Push Hook"), ("x-gitlab-event-uuid", "u-9")]),
            body.to_string().as_bytes(),
        )
        .unwrap();
        assert!(e.is_tag);
        assert_eq!(e.name.as_str(), "v1.2.0");
        assert_eq!(e.commit, SHA);
        assert_eq!(e.message, "Release 1.2");
        assert_eq!(e.delivery.as_deref(), Some("u-9"));
    }

    #[test]
    fn an_annotated_tag_on_github_is_its_head_commit() {
        let tag_object = "5555555555555555555555555555555555555555";
        let body = json!({"ref": "refs/tags/v2", "after": tag_object,
            "head_commit": {"id": SHA, "message": "Release 2"}, "pusher": {"name": "dev"}});
        let e = parse(&h(&[("x-github-event", "push")]), body.to_string().as_bytes()).unwrap();
        assert_eq!((e.is_tag, e.commit.as_str()), (true, SHA));
        // A branch's commit is always `after`.
        let body = json!({"ref": "refs/heads/main", "after": tag_object, "head_commit": {"id": SHA, "message": "x"}});
        let e = parse(&h(&[("x-github-event", "push")]), body.to_string().as_bytes()).unwrap();
        assert_eq!(e.commit, tag_object);
    }

    #[test]
    fn gitea_push_and_what_is_ignored() {
        let body = json!({"ref": "refs/heads/release/2026", "after": SHA,
            "repository": {"clone_url": "http://gitea.local/shop/web.git"},
            "head_commit": {"id": SHA, "message": "fix"}, "pusher": {"login": "dev"}});
        let e = parse(&h(&[("x-gitea-event", "push")]), body.to_string().as_bytes()).unwrap();
        assert_eq!(e.name.as_str(), "release/2026");
        assert_eq!(e.pusher, "dev");
        assert_eq!(
            parse(&h(&[("x-github-event", "ping")]), b"{}"),
            Err(EventError::NotAPush("ping".into()))
        );
        let deleted = json!({"ref": "refs/heads/old", "after": ZERO, "deleted": true});
        assert!(matches!(
            parse(&h(&[("x-github-event", "push")]), deleted.to_string().as_bytes()),
            Err(EventError::Deleted(_))
        ));
        let hostile = json!({"ref": "refs/heads/--upload-pack=evil", "after": SHA});
        assert!(matches!(
            parse(&h(&[("x-github-event", "push")]), hostile.to_string().as_bytes()),
            Err(EventError::Malformed { .. })
        ));
        let no_sha = json!({"ref": "refs/heads/main", "after": "HEAD"});
        assert!(matches!(
            parse(&h(&[("x-github-event", "push")]), no_sha.to_string().as_bytes()),
            Err(EventError::Malformed { .. })
        ));
        assert!(matches!(
            parse(&h(&[("x-github-event", "push")]), b"not json"),
            Err(EventError::Malformed { .. })
        ));
    }
}
