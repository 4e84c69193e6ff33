//! # k8s-ecrupdater
//!
//! Keeps Kubernetes image-pull secrets filled with fresh AWS ECR credentials.
//!
//! Goals this crate holds itself to:
//! - **Small and static**: blocking I/O on one thread, a handful of dependencies, no async runtime,
//!   a musl binary of about 2 MB that runs `FROM scratch`.
//! - **Never make things worse**: a failure never writes a broken or empty secret and never deletes
//!   anything; one namespace failing never stops the others.
//! - **Never leak**: credentials live in [`sensitive::Sensitive`], whose `Debug` and `Display` print
//!   `***`, and the logger masks every registered credential value as a second line of defence.
//! - **Least privilege**: secrets are read and written by name in each namespace, never listed
//!   cluster-wide, so RBAC can restrict them with `resourceNames`.
//! - No `unsafe` code.
//!
//! Data flows one way, and the modules follow it:
//!
//! ```text
//! env + flags -> config -> aws::credentials -> aws::ecr (token) -> dockercfg (payload) -> kube (every secret)
//!                                                     \______________ refresh (one cycle) ___________/
//! ```
#![forbid(unsafe_code)]

pub mod alerts;
pub mod aws;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod dockercfg;
pub mod files;
pub mod health;
pub mod http;
pub mod kube;
pub mod logging;
pub mod names;
pub mod net;
pub mod refresh;
pub mod schedule;
pub mod select;
pub mod sensitive;
pub mod shutdown;
pub mod status;
pub mod tokens;
pub mod verify;
