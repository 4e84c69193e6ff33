//! `FakeEcr`: a fake AWS ECR endpoint (AWS JSON 1.1 protocol) answering
//! `GetAuthorizationToken` on `POST /`, with the checks and error shapes of
//! shared/reference/ecr.md (JSON `{"__type":..,"message":..}` errors) and, on demand, moto's XML
//! errors; plus injected faults and recorded requests. Signatures are not verified (moto's
//! default); the SigV4 header shape, X-Amz-Date and the credential scope are.

use crate::http::{Handler, RecordedRequest, Reply, Request, Response, Server};
use crate::util::{Rng, now_epoch};
use base64::Engine;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const GET_AUTHORIZATION_TOKEN_TARGET: &str =
    "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken";
/// ECR Public's GetAuthorizationToken target.
pub const PUBLIC_GET_AUTHORIZATION_TOKEN_TARGET: &str =
    "SpencerFrontendService.GetAuthorizationToken";
const AMZ_JSON: &str = "application/x-amz-json-1.1";

/// A fault for the next ECR request (each request consumes one, in order).
#[derive(Debug, Clone, PartialEq)]
pub enum AwsFault {
    /// 400 `{"__type":"ThrottlingException","message":"Rate exceeded"}`.
    Throttling,
    /// A JSON error with this HTTP status and `__type`.
    Status(u16, String),
    /// A moto-style XML error (Content-Type text/html) with this status and code.
    XmlError(u16, String),
    /// Close the connection without answering.
    Reset,
    /// Sleep, then answer normally.
    Delay(Duration),
}

struct EcrState {
    user: String,
    password: String,
    expires_at: f64,
    proxy_endpoint: Option<String>,
    access_key: Option<String>,
    password_per_region: bool,
    faults: VecDeque<AwsFault>,
    requests: Vec<RecordedRequest>,
}

struct EcrHandler(Arc<Mutex<EcrState>>);

/// A fake ECR API on 127.0.0.1. Dropping it stops the server.
pub struct FakeEcr {
    state: Arc<Mutex<EcrState>>,
    server: Option<Server>,
    scheme: &'static str,
}

impl FakeEcr {
    /// Plain HTTP on a random port of 127.0.0.1.
    pub fn start() -> FakeEcr {
        Self::bind(0, false).expect("start fake ECR").0
    }

    /// HTTPS (certificate for 127.0.0.1 and localhost); returns the CA PEM.
    pub fn start_tls() -> (FakeEcr, String) {
        let (e, ca) = Self::bind(0, true).expect("start fake ECR (TLS)");
        (e, ca.unwrap_or_default())
    }

    pub fn bind(port: u16, tls: bool) -> std::io::Result<(FakeEcr, Option<String>)> {
        let mut rng = Rng::from_clock();
        let password = rng.string(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
            40,
        );
        let state = Arc::new(Mutex::new(EcrState {
            user: "AWS".into(),
            password,
            expires_at: ((now_epoch() + 12.0 * 3600.0) * 1000.0).round() / 1000.0,
            proxy_endpoint: None,
            access_key: None,
            password_per_region: false,
            faults: VecDeque::new(),
            requests: Vec::new(),
        }));
        let (cfg, ca) = if tls {
            let (cfg, ca) = crate::tls::server_config().map_err(std::io::Error::other)?;
            (Some(cfg), Some(ca))
        } else {
            (None, None)
        };
        let server = Server::start(port, cfg, Arc::new(EcrHandler(state.clone())))?;
        Ok((
            FakeEcr {
                state,
                server: Some(server),
                scheme: if tls { "https" } else { "http" },
            },
            ca,
        ))
    }

    pub fn base_url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port())
    }

    pub fn port(&self) -> u16 {
        self.server.as_ref().map_or(0, Server::port)
    }

    /// The token handed out: `authorizationToken` = base64(user + ":" + password).
    pub fn set_token(&self, user: &str, password: &str, expires_at_epoch: f64) {
        let mut st = self.state.lock().unwrap();
        st.user = user.to_string();
        st.password = password.to_string();
        st.expires_at = expires_at_epoch;
    }

    /// The current (user, password, expiresAt).
    pub fn token(&self) -> (String, String, f64) {
        let st = self.state.lock().unwrap();
        (st.user.clone(), st.password.clone(), st.expires_at)
    }

    /// Overrides `proxyEndpoint` (default: `https://123456789012.dkr.ecr.<region>.amazonaws.com`
    /// with the region of the request's credential scope).
    pub fn set_proxy_endpoint(&self, url: &str) {
        self.state.lock().unwrap().proxy_endpoint = Some(url.to_string());
    }

    /// When on, the password handed out is `<password>-<region of the credential scope>`, so a
    /// test can tell which region's token went where.
    pub fn set_password_per_region(&self, on: bool) {
        self.state.lock().unwrap().password_per_region = on;
    }

    /// Only this access key id is accepted (UnrecognizedClientException otherwise).
    pub fn accept_access_key(&self, key_id: &str) {
        self.state.lock().unwrap().access_key = Some(key_id.to_string());
    }

    pub fn inject(&self, fault: AwsFault) {
        self.state.lock().unwrap().faults.push_back(fault);
    }

    pub fn clear_faults(&self) {
        self.state.lock().unwrap().faults.clear();
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.state.lock().unwrap().requests.clear();
    }
}

fn json_error(code: u16, ty: &str, message: Option<&str>) -> Response {
    let body = match message {
        Some(m) => json!({"__type": ty, "message": m}),
        None => json!({"__type": ty}),
    };
    Response::new(code, AMZ_JSON, body.to_string())
}

fn known_message(code: &str) -> &'static str {
    match code {
        "InvalidClientTokenId" | "UnrecognizedClientException" => {
            "The security token included in the request is invalid."
        }
        "SignatureDoesNotMatch" | "InvalidSignatureException" => {
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
        }
        "ExpiredTokenException" | "ExpiredToken" => {
            "The security token included in the request is expired"
        }
        "AccessDeniedException" | "AccessDenied" => {
            "User is not authorized to perform: ecr:GetAuthorizationToken"
        }
        "ThrottlingException" => "Rate exceeded",
        _ => "injected fault",
    }
}

fn xml_error(code: u16, err: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse>\n    <Errors>\n        <Error>\n            <Code>{err}</Code>\n            <Message><![CDATA[{}]]></Message>\n        </Error>\n    </Errors>\n    <RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId>\n</ErrorResponse>",
        known_message(err)
    );
    Response::new(code, "text/html; charset=utf-8", body)
}

/// (access key id, date, region, service) from `Credential=AKID/DATE/REGION/SERVICE/aws4_request`.
fn credential_scope(auth: &str) -> Option<(String, String, String, String)> {
    let rest = auth.strip_prefix("AWS4-HMAC-SHA256")?.trim_start();
    let cred = rest
        .split(',')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("Credential="))?;
    let parts: Vec<&str> = cred.split('/').collect();
    match parts.as_slice() {
        [key, date, region, service, "aws4_request"] if !key.is_empty() && !region.is_empty() => {
            Some((
                key.to_string(),
                date.to_string(),
                region.to_string(),
                service.to_string(),
            ))
        }
        _ => None,
    }
}

impl Handler for EcrHandler {
    fn handle(&self, req: Request) -> Reply {
        let fault = {
            let mut st = self.0.lock().unwrap();
            st.requests.push(RecordedRequest::from_request(&req));
            st.faults.pop_front()
        };
        match fault {
            None => {}
            Some(AwsFault::Reset) => return Reply::Reset,
            Some(AwsFault::Delay(d)) => std::thread::sleep(d),
            Some(AwsFault::Throttling) => {
                return Reply::Full(json_error(
                    400,
                    "ThrottlingException",
                    Some("Rate exceeded"),
                ));
            }
            Some(AwsFault::Status(code, ty)) => {
                return Reply::Full(json_error(code, &ty, Some(known_message(&ty))));
            }
            Some(AwsFault::XmlError(code, ty)) => return Reply::Full(xml_error(code, &ty)),
        }
        Reply::Full(self.answer(&req))
    }
}

impl EcrHandler {
    fn answer(&self, req: &Request) -> Response {
        if req.method != "POST" || req.path != "/" {
            return json_error(404, "UnknownOperationException", None);
        }
        let auth = req.header("Authorization").unwrap_or("");
        let scope = credential_scope(auth);
        let (Some((key, _date, region, service)), Some(_)) = (scope, req.header("X-Amz-Date"))
        else {
            return json_error(
                400,
                "MissingAuthenticationTokenException",
                Some("Missing Authentication Token"),
            );
        };
        if !auth.contains("Signature=") || !auth.contains("SignedHeaders=") {
            return json_error(
                400,
                "IncompleteSignatureException",
                Some(
                    "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter.",
                ),
            );
        }
        // ECR Public: service `ecr-public`, its own target, one object instead of a list.
        let public = service == "ecr-public";
        if service != "ecr" && !public {
            return json_error(
                400,
                "InvalidSignatureException",
                Some("Credential should be scoped to correct service: 'ecr'. "),
            );
        }
        let st = self.0.lock().unwrap();
        if st.access_key.as_ref().is_some_and(|k| *k != key) {
            return json_error(
                400,
                "UnrecognizedClientException",
                Some("The security token included in the request is invalid."),
            );
        }
        let expected_target = if public {
            PUBLIC_GET_AUTHORIZATION_TOKEN_TARGET
        } else {
            GET_AUTHORIZATION_TOKEN_TARGET
        };
        if req.header("X-Amz-Target") != Some(expected_target) {
            return json_error(400, "UnknownOperationException", None);
        }
        if !req.body.iter().all(u8::is_ascii_whitespace)
            && !serde_json::from_slice::<Value>(&req.body).is_ok_and(|v| v.is_object())
        {
            return json_error(400, "SerializationException", None);
        }
        let password = if st.password_per_region {
            format!("{}-{region}", st.password)
        } else {
            st.password.clone()
        };
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{password}", st.user));
        if public {
            let body = json!({"authorizationData": {"authorizationToken": token, "expiresAt": st.expires_at}});
            return Response::new(200, AMZ_JSON, body.to_string());
        }
        let endpoint = st
            .proxy_endpoint
            .clone()
            .unwrap_or_else(|| format!("https://123456789012.dkr.ecr.{region}.amazonaws.com"));
        let body = json!({"authorizationData": [{
            "authorizationToken": token,
            "expiresAt": st.expires_at,
            "proxyEndpoint": endpoint,
        }]});
        Response::new(200, AMZ_JSON, body.to_string())
            .with_header("x-amzn-RequestId", "0c7f6a3e-1b2d-4e5f-8a9b-0c1d2e3f4a5b")
    }
}
