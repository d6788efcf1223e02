//! Bearer-token authentication: `authorization: Bearer <token>` on every scoring and reflection
//! call (health checks stay open, so load balancers can probe without the secret).
//!
//! The scheme is matched case-insensitively (`Bearer`, `bearer`: RFC 7235 says schemes are), the
//! token exactly. The presented token and the expected one are both hashed with SHA-256 and the
//! digests compared in constant time (`subtle`), so neither the comparison's duration nor an early exit
//! on a length mismatch says how much of a guess was right. The token is never logged.

use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tonic::Status;
use tonic::codegen::http;

/// Checks the `authorization` header; without a token every call passes.
#[derive(Clone, Default)]
pub struct BearerAuth {
    /// SHA-256 of the token; `None` when auth is off.
    expected: Option<Arc<[u8; 32]>>,
}

impl std::fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerAuth")
            .field("enabled", &self.expected.is_some())
            .finish()
    }
}

impl BearerAuth {
    /// `token: None` turns authentication off.
    pub fn new(token: Option<&str>) -> BearerAuth {
        BearerAuth {
            expected: token.map(|t| Arc::new(digest(t.as_bytes()))),
        }
    }

    pub fn enabled(&self) -> bool {
        self.expected.is_some()
    }

    /// `Ok` when auth is off or `presented` (the raw header value) carries the token.
    pub fn check(&self, presented: Option<&[u8]>) -> Result<(), Status> {
        let Some(expected) = &self.expected else {
            return Ok(());
        };
        let Some(presented) = presented else {
            return Err(Status::unauthenticated(
                "missing authorization header (send `authorization: Bearer <token>`)",
            ));
        };
        // `Bearer` plus at least one space (RFC 7235: `1*SP`); the scheme is no secret, so this
        // check need not be constant-time.
        let token = match presented.split_at_checked(SCHEME.len()) {
            Some((scheme, rest))
                if scheme.eq_ignore_ascii_case(SCHEME) && rest.first() == Some(&b' ') =>
            {
                rest.trim_ascii_start()
            }
            _ => return Err(Status::unauthenticated("invalid bearer token")),
        };
        if bool::from(digest(token).ct_eq(expected.as_ref())) {
            Ok(())
        } else {
            Err(Status::unauthenticated("invalid bearer token"))
        }
    }

    pub fn check_headers(&self, headers: &http::HeaderMap) -> Result<(), Status> {
        self.check(headers.get("authorization").map(|v| v.as_bytes()))
    }
}

/// As a tonic interceptor, for services we do not implement ourselves (reflection).
impl tonic::service::Interceptor for BearerAuth {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        self.check(
            request
                .metadata()
                .get("authorization")
                .map(|v| v.as_encoded_bytes()),
        )?;
        Ok(request)
    }
}

/// The authentication scheme, compared ignoring ASCII case.
const SCHEME: &[u8] = b"Bearer";

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Reads a token file: the first line, trimmed; an empty token is refused.
pub fn read_token_file(path: &std::path::Path) -> std::io::Result<String> {
    let text = std::fs::read_to_string(path)?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the token file is empty",
        ));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_the_exact_bearer_token() {
        let auth = BearerAuth::new(Some("s3cret"));
        for good in [
            &b"Bearer s3cret"[..],
            b"bearer s3cret",
            b"BEARER s3cret",
            b"Bearer   s3cret",
        ] {
            assert!(auth.check(Some(good)).is_ok(), "{good:?}");
        }
        for bad in [
            &b"Bearer s3cre"[..],
            b"Bearer s3cret ",
            b"Bearers3cret",
            b"Basic s3cret",
            b"Bearer ",
            b"Bearer",
            b"s3cret",
            b"",
        ] {
            let status = auth.check(Some(bad)).unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unauthenticated);
            assert!(!status.message().contains("s3cret"));
        }
        assert!(auth.check(None).is_err());
        assert!(BearerAuth::new(None).check(None).is_ok());
        assert!(!format!("{auth:?}").contains("s3cret"));
    }
}
