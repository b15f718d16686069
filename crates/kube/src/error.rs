/// What went wrong talking to a cluster, in terms an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KubeError {
    /// The cluster's address or certificate is unusable.
    #[error("cluster configuration: {0}")]
    Config(String),
    /// 401: the token is wrong or expired.
    #[error("the cluster refused Prism's credentials (401 Unauthorized): {0}")]
    Unauthorized(String),
    /// 403: RBAC does not let Prism's token do this.
    #[error("the cluster forbids this for Prism's credentials (403 Forbidden): {0}")]
    Forbidden(String),
    /// The API server could not be reached or did not answer in time.
    #[error("the cluster cannot be reached: {0}")]
    Unreachable(String),
    /// The cluster does not serve this kind.
    #[error("the cluster does not serve {0}")]
    UnknownKind(String),
    /// The API server rejected the request (validation, conflict...).
    #[error("the cluster rejected {object}: {message}")]
    Rejected { object: String, message: String },
}

pub type Result<T, E = KubeError> = std::result::Result<T, E>;

impl KubeError {
    pub(crate) fn from_kube(object: &str, e: kube::Error) -> Self {
        match e {
            kube::Error::Api(s) if s.code == 401 => KubeError::Unauthorized(s.message),
            kube::Error::Api(s) if s.code == 403 => KubeError::Forbidden(s.message),
            kube::Error::Api(s) => KubeError::Rejected {
                object: object.to_owned(),
                message: s.message,
            },
            other => KubeError::Unreachable(other.to_string()),
        }
    }
}
