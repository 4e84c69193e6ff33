//! # k8s-ecrupdater
//!
//! Keeps Kubernetes image-pull secrets filled with fresh AWS ECR credentials.
//!
//! Goals this crate holds itself to:
//! - **Small and static**: blocking I/O on one thread, a handful of dependencies, no async runtime,
//!   a musl binary of about 2.4 MB that runs `FROM scratch`.
//! - **Never make things worse**: a failure never writes a broken or empty secret and never deletes
//!   anything; one namespace failing never stops the others.
//! - **Never leak**: credentials live in [`sensitive::Sensitive`], whose `Debug` and `Display` print
//!   `***`, and the logger masks every registered credential value as a second line of defence.
//! - **Least privilege**: secrets are read and written by name in each namespace, never listed
//!   cluster-wide, so RBAC can restrict them with `resourceNames`.
//! - **Bounded whatever peers send**: every answer is capped while it is read and parsed into
//!   only the fields used; every retry, page and loop has a count (see README's Bounds).
//! - **Proven before written**: a new login is tried against its registry ([`verify`]) before
//!   it goes into any secret.
//! - No `unsafe` code.
//!
//! Data flows one way, and the modules follow it:
//!
//! ```text
//! env + flags -> config -> aws (credentials, ecr) -> tokens (+ verify) -> dockercfg (payload) -> kube (every secret)
//!                                                       \_________ refresh (one cycle), daemon (the loop) _________/
//! ```
//!
//! Below every layer: [`names`] (Kubernetes and AWS name rules), [`files`] (bounded reads of
//! local files), [`sensitive`] (the credential wrapper and the log mask). Beside the loop:
//! [`health`] (the probe and metrics thread), [`status`] (`--status`), [`alerts`] (Events),
//! [`logging`], [`shutdown`].
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
