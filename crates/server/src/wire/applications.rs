use prism_api::applications as api;
use prism_store::apps as store;

use super::ToApi;

impl ToApi for store::Application {
    type Api = api::Application;
    fn to_api(self) -> api::Application {
        api::Application {
            id: self.id,
            project_id: self.project_id,
            project: self.project,
            name: self.name,
            git_url: self.git_url,
            build_settings: self.build_settings,
            template_settings: self.template_settings,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

impl ToApi for store::EnvSettings {
    type Api = api::EnvSettings;
    fn to_api(self) -> api::EnvSettings {
        api::EnvSettings {
            environment: self.environment,
            replicas: self.replicas,
            cpu_request: self.cpu_request,
            cpu_limit: self.cpu_limit,
            memory_request: self.memory_request,
            memory_limit: self.memory_limit,
            env_vars: self.env_vars,
            customised: self.customised,
        }
    }
}
