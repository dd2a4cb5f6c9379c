//! A typed client of Keyward's HTTP API (the operations the CLI and tools need).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};
use zeroize::Zeroizing;

/// The HTTP method of an operation (for [`Client::call`]).
pub use reqwest::Method;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server answered with a problem (`application/problem+json`).
    #[error("{status} {code}: {detail} (request {request_id})")]
    Problem {
        /// HTTP status.
        status: u16,
        /// Keyward's stable error code, e.g. `AccessDenied`.
        code: String,
        /// The server's explanation.
        detail: String,
        /// The request's id, to find its audit record.
        request_id: String,
    },
    /// The server could not be reached or answered something unreadable.
    #[error("{0}")]
    Transport(String),
}

/// A data key: its plaintext (use it, then drop it) and the same key as a ciphertext blob.
#[derive(Debug)]
pub struct DataKey {
    /// The key that wrapped it.
    pub key_id: String,
    /// The key version.
    pub key_version: u32,
    /// The data key.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// The data key encrypted under the Keyward key.
    pub ciphertext_blob: Vec<u8>,
}

/// A client bound to one server and one bearer token.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Zeroizing<String>,
}

#[derive(Deserialize)]
struct Problem {
    code: Option<String>,
    detail: Option<String>,
    title: Option<String>,
    request_id: Option<String>,
}

impl ApiError {
    /// The process exit status a command line reports for this failure: 2 invalid input, 3
    /// denied, 4 not found, 5 unavailable (retry later), 1 anything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Problem { code, .. } => match code.as_str() {
                "InvalidRequest"
                | "InvalidCiphertext"
                | "PayloadTooLarge"
                | "Conflict"
                | "KeyDisabled"
                | "KeyPendingDeletion"
                | "UnsupportedOperation" => 2,
                "AccessDenied" | "Unauthenticated" => 3,
                "NotFound" => 4,
                "AuditUnavailable" | "KeyUnavailable" | "BackendUnavailable" | "RateLimited" => 5,
                _ => 1,
            },
            Self::Transport(_) => 5,
        }
    }
}

impl Client {
    /// A client for `server` (e.g. `https://kms.example.com`), trusting the web PKI and, when
    /// given, the PEM certificates in `extra_ca_pem`.
    pub fn new(server: &str, token: &str, extra_ca_pem: Option<&[u8]>) -> Result<Self, ApiError> {
        // Keyward builds rustls on aws-lc; install it unless the process already chose one.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let mut builder = reqwest::Client::builder().use_rustls_tls().timeout(std::time::Duration::from_secs(30));
        if let Some(pem) = extra_ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem).map_err(|e| ApiError::Transport(e.to_string()))? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| ApiError::Transport(e.to_string()))?;
        Ok(Self { http, base: server.trim_end_matches('/').to_owned(), token: Zeroizing::new(token.to_owned()) })
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, ApiError> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// Calls an operation: a JSON body when given; the JSON answer (`null` for 204). `path`
    /// starts with `/v1/`; path segments must already be percent-encoded ([`encode_path`]).
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, ApiError> {
        let mut req = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(self.token.as_str());
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.map_err(|e| ApiError::Transport(format!("{}: {e}", self.base)))?;
        let status = res.status().as_u16();
        let bytes = res.bytes().await.map_err(|e| ApiError::Transport(e.to_string()))?;
        if status == 204 {
            return Ok(Value::Null);
        }
        if (200..300).contains(&status) {
            return serde_json::from_slice(&bytes).map_err(|e| ApiError::Transport(format!("unreadable answer: {e}")));
        }
        let problem: Option<Problem> = serde_json::from_slice(&bytes).ok();
        Err(ApiError::Problem {
            status,
            code: problem.as_ref().and_then(|p| p.code.clone()).unwrap_or_else(|| "Unknown".into()),
            request_id: problem.as_ref().and_then(|p| p.request_id.clone()).unwrap_or_default(),
            detail: problem.and_then(|p| p.detail.or(p.title)).unwrap_or_default(),
        })
    }

    /// GenerateDataKey: a 32-byte data key under `key` (id or `alias/NAME`), bound to `context`.
    pub async fn generate_data_key(&self, key: &str, context: &BTreeMap<String, String>) -> Result<DataKey, ApiError> {
        let path = format!("/v1/keys/{}/generate-data-key", encode_path(key));
        let v = self.post(&path, json!({"key_spec": "AES_256", "encryption_context": context})).await?;
        Ok(DataKey {
            key_id: field(&v, "key_id")?,
            key_version: v["key_version"].as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
            plaintext: Zeroizing::new(b64_field(&v, "plaintext")?),
            ciphertext_blob: b64_field(&v, "ciphertext_blob")?,
        })
    }

    /// Decrypt: the plaintext of a ciphertext blob, under the context it was bound to.
    pub async fn decrypt(
        &self,
        ciphertext_blob: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<Zeroizing<Vec<u8>>, ApiError> {
        let body = json!({"ciphertext_blob": STANDARD.encode(ciphertext_blob), "encryption_context": context});
        let v = self.post("/v1/decrypt", body).await?;
        Ok(Zeroizing::new(b64_field(&v, "plaintext")?))
    }
}

impl Client {
    /// CreateAccessKey: a SigV4 credential for `principal` (`Keyward::User::"alice"`); the
    /// answer holds the secret, shown this once.
    pub async fn create_access_key(
        &self,
        principal: &str,
        groups: &[String],
        default_namespace: &str,
    ) -> Result<Value, ApiError> {
        let body = json!({"principal": principal, "groups": groups, "default_namespace": default_namespace});
        self.post("/v1/access-keys", body).await
    }

    /// ListAccessKeys: every page, never with secrets.
    pub async fn list_access_keys(&self) -> Result<Vec<Value>, ApiError> {
        let mut all = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let path = match &next {
                Some(t) => format!("/v1/access-keys?next_token={t}"),
                None => "/v1/access-keys".to_owned(),
            };
            let v = self.call(reqwest::Method::GET, &path, None).await?;
            all.extend(v["access_keys"].as_array().cloned().unwrap_or_default());
            match v["next_token"].as_str() {
                Some(t) => next = Some(t.to_owned()),
                None => return Ok(all),
            }
        }
    }

    /// DeleteAccessKey.
    pub async fn delete_access_key(&self, access_key_id: &str) -> Result<(), ApiError> {
        self.call(reqwest::Method::DELETE, &format!("/v1/access-keys/{}", encode_path(access_key_id)), None).await?;
        Ok(())
    }
}

/// `alias/NAME` goes into a path percent-encoded.
pub fn encode_path(key: &str) -> String {
    key.replace('/', "%2F")
}

fn field(v: &Value, name: &str) -> Result<String, ApiError> {
    v[name].as_str().map(str::to_owned).ok_or_else(|| ApiError::Transport(format!("answer without `{name}`")))
}

fn b64_field(v: &Value, name: &str) -> Result<Vec<u8>, ApiError> {
    STANDARD.decode(field(v, name)?).map_err(|_| ApiError::Transport(format!("`{name}` is not base64")))
}
