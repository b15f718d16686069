use prism_api::stacks as api;
use prism_store::stacks as store;

use super::ToApi;

impl ToApi for store::Stack {
    type Api = api::Stack;
    fn to_api(self) -> api::Stack {
        api::Stack {
            name: self.name,
            description: self.description,
            build_command: self.build_command,
            artifact_paths: self.artifact_paths,
            image_dir: self.image_dir,
            entrypoint: self.entrypoint,
            cmd: self.cmd,
            env: self.env,
            updated_at: self.updated_at,
        }
    }
}
