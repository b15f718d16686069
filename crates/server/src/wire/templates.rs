use prism_api::templates as api;
use prism_store::template_sets as store;

use super::ToApi;

impl ToApi for store::TemplateSetVersion {
    type Api = api::TemplateSetVersion;
    fn to_api(self) -> api::TemplateSetVersion {
        api::TemplateSetVersion {
            version: self.version,
            files: self.files,
            author: self.author,
            note: self.note,
            created_at: self.created_at,
        }
    }
}

impl ToApi for store::VersionSummary {
    type Api = api::VersionSummary;
    fn to_api(self) -> api::VersionSummary {
        api::VersionSummary {
            version: self.version,
            author: self.author,
            note: self.note,
            created_at: self.created_at,
        }
    }
}
