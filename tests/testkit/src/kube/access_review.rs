//! SelfSubjectAccessReview (authorization.k8s.io/v1) in the fake: `POST
//! /apis/authorization.k8s.io/v1/selfsubjectaccessreviews` answers 201 with the review and its
//! `status` (`allowed`, `reason`); it is not stored, so `GET` is 405. [`decide`] answers as the
//! apiserver's authorizer would: when the fake enforces RBAC ([`FakeKube::enforce_rbac`]), from
//! the same rules that decide its 403s, for the identity it enforces them for; otherwise every
//! right is allowed. A right a test denies ([`FakeKube::deny_access`]) is refused either way.
//! A test can also make the server not know the resource at all
//! ([`FakeKube::set_access_reviews`]), as an old or locked-down server answers.

use super::rbac::{Attributes, Rbac, User};
use super::status::{self, ApiResult, Cause};
use super::{FakeKube, Inner};
use crate::http::{Request, Response};
use serde_json::{Value, json};
use std::sync::Arc;

/// The access-review settings of one fake.
#[derive(Debug, Default)]
pub(crate) struct AccessReviews {
    /// (verb, group, resource) denied.
    denied: Vec<(String, String, String)>,
    /// The resource answers 404, as on a server without it.
    unavailable: bool,
    /// How many reviews were answered.
    answered: usize,
}

impl FakeKube {
    /// Denies `verb` on `resource` of API group `group` ("" = core) to every review.
    pub fn deny_access(&self, verb: &str, group: &str, resource: &str) {
        self.inner
            .lock()
            .access_reviews
            .denied
            .push((verb.into(), group.into(), resource.into()));
    }

    /// `false`: the review resource answers 404 (an old or locked-down server).
    pub fn set_access_reviews(&self, available: bool) {
        self.inner.lock().access_reviews.unavailable = !available;
    }

    /// How many access reviews were answered.
    pub fn access_reviews_answered(&self) -> usize {
        self.inner.lock().access_reviews.answered
    }
}

/// `/apis/authorization.k8s.io/v1/selfsubjectaccessreviews`.
pub(crate) fn handle(inner: &Arc<Inner>, req: &Request) -> ApiResult<Response> {
    if inner.lock().access_reviews.unavailable {
        return Err(status::path_not_found());
    }
    if req.method != "POST" {
        return Err(status::method_not_allowed());
    }
    let mut review: Value = serde_json::from_slice(&req.body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| status::bad_request("the body is not a JSON object"))?;
    let attrs = review.pointer("/spec/resourceAttributes").cloned();
    let Some(attrs) = attrs.filter(Value::is_object) else {
        let cause = Cause::required(
            "spec.resourceAttributes",
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        );
        return Err(status::invalid(
            "SelfSubjectAccessReview",
            "authorization.k8s.io",
            "",
            &[cause],
        ));
    };
    let mut st = inner.lock();
    let (allowed, reason) = decide(&st.access_reviews, st.rbac.as_ref(), &attrs);
    st.access_reviews.answered += 1;
    review["apiVersion"] = json!("authorization.k8s.io/v1");
    review["kind"] = json!("SelfSubjectAccessReview");
    review["metadata"] = json!({"creationTimestamp": null});
    review["status"] = if allowed {
        json!({"allowed": true, "reason": reason})
    } else {
        json!({"allowed": false, "reason": reason})
    };
    Ok(Response::json(201, &review))
}

/// Whether the caller may do what `attrs` (`verb`, `group`, `resource`, `subresource`,
/// `namespace`, `name`) describe, and why: a denied right never; under enforced RBAC, when its
/// rules allow it for the enforced identity; otherwise always.
pub(crate) fn decide(
    reviews: &AccessReviews,
    rbac: Option<&(Rbac, User)>,
    attrs: &Value,
) -> (bool, String) {
    let s = |k: &str| attrs.get(k).and_then(Value::as_str).unwrap_or("");
    let denied = reviews
        .denied
        .iter()
        .any(|(v, g, r)| v == s("verb") && g == s("group") && r == s("resource"));
    if denied {
        return (false, String::new());
    }
    let Some((rbac, user)) = rbac else {
        return (
            true,
            "RBAC: allowed by the fake (every right unless a test denies it)".into(),
        );
    };
    let asked = Attributes {
        verb: s("verb").into(),
        api_group: s("group").into(),
        resource: s("resource").into(),
        subresource: s("subresource").into(),
        namespace: s("namespace").into(),
        name: s("name").into(),
    };
    if rbac.allows(user, &asked) {
        (true, "RBAC: allowed by the rules the fake enforces".into())
    } else {
        // The apiserver's answer when no authorizer has an opinion: not allowed, no reason.
        (false, String::new())
    }
}
