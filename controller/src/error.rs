//! The API's typed error, and how each case maps to a gRPC status code.

use tonic::Status;

/// What can go wrong serving an API request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No, an invalid, or an expired credential.
    #[error("{0}")]
    Unauthenticated(String),
    /// Authenticated, but the role does not allow it.
    #[error("{0}")]
    PermissionDenied(String),
    /// A request field is invalid; names the field.
    #[error("{field}: {reason}")]
    InvalidArgument {
        /// The field, as named in the proto.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The resource does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The resource already exists (a unique name, a clashing port).
    #[error("{0}")]
    AlreadyExists(String),
    /// The system is not in a state that allows the request.
    #[error("{0}")]
    FailedPrecondition(String),
    /// Too many attempts.
    #[error("{0}")]
    ResourceExhausted(String),
    /// A node, or the database, cannot be reached right now.
    #[error("{0}")]
    Unavailable(String),
    /// The agent did not answer in time.
    #[error("{0}")]
    DeadlineExceeded(String),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// Anything else; the message is logged, the caller sees a generic text.
    #[error("internal: {0}")]
    Internal(String),
}

impl ApiError {
    /// An invalid-argument error for `field`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Result of API handlers.
pub type ApiResult<T> = Result<T, ApiError>;

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Unauthenticated(m) => Status::unauthenticated(m),
            ApiError::PermissionDenied(m) => Status::permission_denied(m),
            e @ ApiError::InvalidArgument { .. } => Status::invalid_argument(e.to_string()),
            ApiError::NotFound(m) => Status::not_found(m),
            ApiError::AlreadyExists(m) => Status::already_exists(m),
            ApiError::FailedPrecondition(m) => Status::failed_precondition(m),
            ApiError::ResourceExhausted(m) => Status::resource_exhausted(m),
            ApiError::Unavailable(m) => Status::unavailable(m),
            ApiError::DeadlineExceeded(m) => Status::deadline_exceeded(m),
            ApiError::Database(e) => {
                tracing::error!(error = %e, "database error");
                Status::internal("database error; see the controller log")
            }
            ApiError::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                Status::internal("internal error; see the controller log")
            }
        }
    }
}
