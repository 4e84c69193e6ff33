//! AWS: credentials (the chain), SigV4 signing, ECR's GetAuthorizationToken, and the error type
//! every AWS call returns. Plain blocking HTTP through `ureq`; no AWS SDK.

pub mod credentials;
pub mod ecr;
pub mod error;
pub mod sign;

pub use credentials::{CredentialChain, Credentials};
pub use ecr::{AuthorizationData, EcrClient};
pub use error::AwsError;
