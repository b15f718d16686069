use prism_api::credentials as api;
use prism_store::credentials as store;

use super::ToApi;

/// The sealed password stays behind.
impl ToApi for store::Registry {
    type Api = api::Registry;
    fn to_api(self) -> api::Registry {
        api::Registry {
            token_realm_hosts: self.token_realm_hosts(),
            name: self.name,
            host: self.host,
            insecure_http: self.insecure_http != 0,
            username: self.username,
            all_projects: self.all_projects != 0,
            projects: self.projects,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// The sealed password stays behind.
impl ToApi for store::GitCredential {
    type Api = api::GitCredential;
    fn to_api(self) -> api::GitCredential {
        api::GitCredential {
            name: self.name,
            username: self.username,
            host: self.host,
            all_projects: self.all_projects != 0,
            projects: self.projects,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// The sealed token stays behind; unreadable settings show as null.
impl ToApi for store::ExecutorRecord {
    type Api = api::ExecutorRecord;
    fn to_api(self) -> api::ExecutorRecord {
        api::ExecutorRecord {
            name: self.name,
            kind: self.kind,
            url: self.url,
            job: self.job,
            username: self.username,
            settings: serde_json::from_str(&self.settings).unwrap_or(serde_json::Value::Null),
            all_projects: self.all_projects != 0,
            projects: self.projects,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}
