//! Kubernetes by raw REST: the client (base URL, auth, one place that turns an answer into a
//! typed error), and the few resources the daemon touches, each in its own module.

pub mod access_review;
pub mod client;
pub mod error;
pub mod events;
pub mod namespaces;
pub mod secrets;
pub mod serviceaccounts;

pub use client::KubeClient;
pub use error::KubeError;
