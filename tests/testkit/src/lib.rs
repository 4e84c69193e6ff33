//! Test peers for k8s-ecrupdater, all over real sockets on 127.0.0.1:
//! [`FakeKube`] (a fake kube-apiserver for core/v1 Namespaces, Secrets and ServiceAccounts that
//! follows shared/reference/kubernetes-api.md) and [`FakeEcr`] (a fake AWS ECR
//! GetAuthorizationToken endpoint). Modules: `http` (the tiny HTTP/1.1 server), `kube`, `aws`,
//! `tls`, `util`.

pub mod aws;
pub mod http;
pub mod kube;
pub mod tls;
mod util;

pub use aws::{AwsFault, FakeEcr};
pub use http::RecordedRequest;
pub use kube::{FakeKube, Fault, FaultKind, Mutation, fault_from_json};

#[cfg(test)]
mod tests {
    fn send_sync<T: Send + Sync>() {}

    #[test]
    fn fakes_can_be_shared_across_threads() {
        send_sync::<crate::FakeKube>();
        send_sync::<crate::FakeEcr>();
    }
}
