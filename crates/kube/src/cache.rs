use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::{Cluster, ClusterConfig, Result};

/// One client per cluster, rebuilt when the cluster's record changes (its
/// `updated_at` is the version).
#[derive(Default)]
pub struct ClientCache {
    clients: Mutex<HashMap<i64, (i64, Arc<Cluster>)>>,
}

impl ClientCache {
    pub async fn get(
        &self,
        id: i64,
        version: i64,
        config: impl FnOnce() -> Result<ClusterConfig>,
    ) -> Result<Arc<Cluster>> {
        let mut map = self.clients.lock().await;
        if let Some((v, c)) = map.get(&id) {
            if *v == version {
                return Ok(c.clone());
            }
        }
        let cluster = Arc::new(Cluster::connect(config()?).await?);
        map.insert(id, (version, cluster.clone()));
        Ok(cluster)
    }

    pub async fn forget(&self, id: i64) {
        self.clients.lock().await.remove(&id);
    }
}
