use prism_api::builds as api;
use prism_store::builds as store;

use super::ToApi;

/// The row ids of the application, project and base image stay behind.
impl ToApi for store::Build {
    type Api = api::Build;
    fn to_api(self) -> api::Build {
        api::Build {
            id: self.id,
            release: self.release.to_string(),
            application: self.application,
            state: self.state,
            executor: self.executor,
            settings: self.settings,
            commit_sha: self.commit_sha,
            image_ref: self.image_ref,
            image_digest: self.image_digest,
            layer_digest: self.layer_digest,
            base_image: self.base_image,
            base_digest: self.base_digest,
            builder_image: self.builder_image,
            builder_digest: self.builder_digest,
            bytes_uploaded: self.bytes_uploaded,
            external_url: self.external_url,
            failure_kind: self.failure_kind,
            error: self.error,
            cancel_requested: self.cancel_requested,
            requested_by: self.requested_by,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            updated_at: self.updated_at,
            queue_position: self.queue_position,
        }
    }
}

impl ToApi for store::LogLine {
    type Api = api::LogLine;
    fn to_api(self) -> api::LogLine {
        api::LogLine {
            seq: self.seq,
            stream: self.stream,
            line: self.line,
            at: self.at,
        }
    }
}
