//! SelfSubjectAccessReview (authorization.k8s.io/v1) in the fake: `POST
//! /apis/authorization.k8s.io/v1/selfsubjectaccessreviews` answers 201 with the review and its
//! `status` (`allowed`, `reason`); it is not stored, so `GET` is 405. Every right is allowed
//! unless a test denies it ([`FakeKube::deny_access`]); [`decide`] is the one place that says
//! so, kept small so that it can later consult the RBAC rules the fake enforces. A test can
//! also make the server not know the resource at all ([`FakeKube::set_access_reviews`]), as an
//! old or locked-down server answers.

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
    let (allowed, reason) = decide(&st.access_reviews, &attrs);
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

/// Whether the caller may do what `attrs` (`verb`, `group`, `resource`, ...) describe, and why.
pub(crate) fn decide(reviews: &AccessReviews, attrs: &Value) -> (bool, String) {
    let s = |k: &str| attrs.get(k).and_then(Value::as_str).unwrap_or("");
    let denied = reviews
        .denied
        .iter()
        .any(|(v, g, r)| v == s("verb") && g == s("group") && r == s("resource"));
    if denied {
        (false, String::new())
    } else {
        (
            true,
            "RBAC: allowed by the fake (every right unless a test denies it)".into(),
        )
    }
}
