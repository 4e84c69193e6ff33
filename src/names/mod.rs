//! Name rules that belong to every layer, so that none of them reaches another for them: here the
//! Kubernetes ones, the DNS-1123 label (namespaces) and the DNS-1123 subdomain (secrets, service
//! accounts), as `k8s.io/apimachinery/pkg/util/validation` states them; in [`aws`] the shapes of
//! region names and ECR registry hosts. Every name that goes into a request path is checked with
//! these first, whether it came from configuration or from an answer. Depends on nothing else in
//! the crate.

pub mod aws;

/// Longest DNS-1123 label (a namespace name).
pub const LABEL_MAX_LEN: usize = 63;
/// Longest DNS-1123 subdomain (a Secret or ServiceAccount name).
pub const SUBDOMAIN_MAX_LEN: usize = 253;

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters: what a namespace name must be.
pub fn is_dns1123_label(name: &str) -> bool {
    name.len() <= LABEL_MAX_LEN && is_label_shaped(name)
}

/// Labels of [`is_dns1123_label`]'s shape joined by dots, at most 253 characters in all: what a
/// Secret or ServiceAccount name must be.
pub fn is_dns1123_subdomain(name: &str) -> bool {
    name.len() <= SUBDOMAIN_MAX_LEN && name.split('.').all(is_label_shaped)
}

/// Lower-case alphanumerics and `-`, starting and ending alphanumeric (any length but empty).
fn is_label_shaped(part: &str) -> bool {
    let bytes = part.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            alnum(first) && alnum(last) && bytes.iter().all(|b| alnum(b) || *b == b'-')
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        for good in ["a", "kube-system", "0", "a-0", &"a".repeat(63)] {
            assert!(is_dns1123_label(good), "{good}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "A",
            "a.b",
            "a_b",
            "kube-system/secrets/victim#",
            "a b",
            "a\n",
            "..",
            "é",
            &"a".repeat(64),
        ] {
            assert!(!is_dns1123_label(bad), "{bad:?}");
        }
    }

    #[test]
    fn subdomains() {
        for good in ["ecr-pull", "a.b.c", "regcred", "0.0", &"a".repeat(253)] {
            assert!(is_dns1123_subdomain(good), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a..b",
            ".a",
            "a.",
            "a/b",
            "a?b",
            "a%2Fb",
            "A",
            &"a".repeat(254),
        ] {
            assert!(!is_dns1123_subdomain(bad), "{bad:?}");
        }
    }
}
