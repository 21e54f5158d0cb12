//! Tokens and authentication: generated tokens, their digests in `[ops] tokens`, and the
//! bearer check that makes an [`OpsCaller`].

use std::net::{IpAddr, SocketAddr};

use axum::extract::connect_info::ConnectInfo;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ApiError;
use crate::state::AppState;
use crate::web::settings::OpsToken;
use ebok_store::auth::{base64url, token_hash};

/// Prefix of generated tokens, so that secret scanners and people recognise them.
const TOKEN_PREFIX: &str = "ebok_";

/// A fresh random token (256 bits from the OS, base64url, `ebok_` prefix) and the SHA-256
/// hex digest that goes into `[ops] tokens`. Only the digest is stored; the token is shown
/// once to whoever configures the billing system.
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = format!("{TOKEN_PREFIX}{}", base64url(&bytes));
    let digest = token_hash(&token);
    (token, digest)
}

/// 64 hex digits (either case) as 32 bytes.
pub(super) fn decode_digest(text: &str) -> Option<[u8; 32]> {
    let text = text.as_bytes();
    if text.len() != 64 {
        return None;
    }
    let nibble = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; 32];
    for (i, pair) in text.chunks(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

/// The name of the configured token whose digest matches `presented`. Every configured
/// digest is compared, each in constant time, so the answer's timing says nothing about
/// how close a guess came or which entry matched.
fn authenticate<'a>(tokens: &'a [OpsToken], presented: &str) -> Option<&'a str> {
    let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    let mut found = None;
    for t in tokens {
        let Some(expected) = decode_digest(&t.sha256) else {
            continue;
        };
        let hit: bool = expected.ct_eq(&digest).into();
        if hit && found.is_none() {
            found = Some(t.name.as_str());
        }
    }
    found
}

/// The token of an `Authorization: Bearer …` header (scheme case-insensitive).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// An authenticated caller of the ops API: the name of the token it presented.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OpsCaller {
    pub name: String,
    /// The peer address, when the server was started with connect info.
    pub ip: Option<IpAddr>,
}

impl OpsCaller {
    /// The audit log's actor: `ops:<token name>`.
    pub fn actor(&self) -> String {
        format!("ops:{}", self.name)
    }
}

impl FromRequestParts<AppState> for OpsCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let tokens = &state.config.ops.tokens;
        let refused = |reason: &str| {
            tracing::warn!(
                method = %parts.method,
                path = %parts.uri.path(),
                client = ?ip,
                reason,
                "ops API call refused"
            );
            ApiError::unauthorized()
        };
        if tokens.is_empty() {
            return Err(refused("no tokens configured: the ops API is disabled"));
        }
        let Some(presented) = bearer_token(&parts.headers) else {
            return Err(refused("no bearer token"));
        };
        let Some(name) = authenticate(tokens, presented) else {
            return Err(refused("unknown token"));
        };
        tracing::info!(
            token = name,
            method = %parts.method,
            path = %parts.uri.path(),
            query = parts.uri.query().unwrap_or(""),
            client = ?ip,
            "ops API call"
        );
        Ok(OpsCaller {
            name: name.to_owned(),
            ip,
        })
    }
}
