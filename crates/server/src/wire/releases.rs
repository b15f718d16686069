use prism_api::releases as api;
use prism_store::releases as store;

use super::ToApi;

/// The row ids and the parsed state stay behind (the state goes as its word).
impl ToApi for store::Release {
    type Api = api::Release;
    fn to_api(self) -> api::Release {
        api::Release {
            id: self.id.to_string(),
            application: self.application,
            project: self.project,
            git_ref: self.git_ref,
            change_note: self.change_note,
            creator: self.creator,
            state: self.state.to_owned(),
            environment: self.environment,
            commit_sha: self.commit_sha,
            image_ref: self.image_ref,
            image_digest: self.image_digest,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

impl ToApi for store::Transition {
    type Api = api::Transition;
    fn to_api(self) -> api::Transition {
        api::Transition {
            action: self.action,
            from_state: self.from_state,
            from_environment: self.from_environment,
            to_state: self.to_state,
            to_environment: self.to_environment,
            actor: self.actor,
            note: self.note,
            at: self.at,
        }
    }
}
