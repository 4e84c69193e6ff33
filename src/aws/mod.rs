//! AWS: credentials (the chain and its sources: `profile` files, `sts`, `imds`, `container`),
//! SigV4 signing, ECR's GetAuthorizationToken, a small `xml` reader for STS answers, and the
//! error type every AWS call returns. Plain blocking HTTP through `ureq`; no AWS SDK.

pub mod answer;
pub mod container;
pub mod credentials;
pub mod ecr;
pub mod error;
pub mod imds;
pub mod keys;
pub mod profile;
pub mod sign;
pub mod sts;
pub mod xml;

pub use credentials::{CredentialChain, Credentials};
pub use ecr::{AuthorizationData, EcrClient};
pub use error::AwsError;
