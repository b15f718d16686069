//! Store rows become API types here, at the edge: the store's tables and the
//! REST API's JSON change for different reasons, and the orphan rule keeps
//! `From<store::X> for api::X` out of this crate, hence a local trait.
//! One module per concept, mirroring `prism_api`.

mod app_secrets;
mod applications;
mod audit;
mod base_images;
mod board;
mod builds;
mod clusters;
mod credentials;
mod deploys;
mod environments;
mod governance;
mod jobs;
pub mod notifications;
mod ops_tools;
mod projects;
mod raw_json;
mod releases;
mod stacks;
mod templates;
mod tokens;
mod users;
mod webhooks;

/// The API shape of a store row (or of a list or option of them).
pub trait ToApi {
    type Api;
    fn to_api(self) -> Self::Api;
}

impl<T: ToApi> ToApi for Vec<T> {
    type Api = Vec<T::Api>;
    fn to_api(self) -> Self::Api {
        self.into_iter().map(ToApi::to_api).collect()
    }
}

impl<T: ToApi> ToApi for Option<T> {
    type Api = Option<T::Api>;
    fn to_api(self) -> Self::Api {
        self.map(ToApi::to_api)
    }
}
