use prism_api::base_images as api;
use prism_store::base_images as store;

use super::ToApi;

/// The row ids of the image, its parent and its registry stay behind.
impl ToApi for store::BaseImage {
    type Api = api::BaseImage;
    fn to_api(self) -> api::BaseImage {
        api::BaseImage {
            name: self.name,
            tier: self.tier,
            parent: self.parent,
            registry: self.registry,
            repository: self.repository,
            tag: self.tag,
            recipe: self.recipe,
            digest: self.digest,
            parent_digest: self.parent_digest,
            built_at: self.built_at,
            build_state: self.build_state,
            build_error: self.build_error,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

impl ToApi for store::BaseVersion {
    type Api = api::BaseVersion;
    fn to_api(self) -> api::BaseVersion {
        api::BaseVersion {
            digest: self.digest,
            parent_digest: self.parent_digest,
            built_at: self.built_at,
        }
    }
}

impl ToApi for store::OutdatedApp {
    type Api = api::OutdatedApp;
    fn to_api(self) -> api::OutdatedApp {
        api::OutdatedApp {
            application: self.application,
            project: self.project,
            release_seq: self.release_seq,
            build_id: self.build_id,
            commit_sha: self.commit_sha,
            git_ref: self.git_ref,
            base_digest: self.base_digest,
        }
    }
}
