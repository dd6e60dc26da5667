//! Bearer-token checks for the protected endpoints.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use sha2::{Digest, Sha256};

use super::ApiContext;

/// The bearer token of the mutating endpoints. Its `Debug` form hides the secret, so
/// configs that hold one can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(String);

impl ApiToken {
    pub fn new(token: impl Into<String>) -> Self {
        ApiToken(token.into())
    }

    /// Whether `presented` is this token (constant time).
    pub fn matches(&self, presented: &str) -> bool {
        !self.0.is_empty() && token_matches(presented, &self.0)
    }
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

/// Whether `presented` equals `expected`, in time independent of where they differ.
///
/// Both are hashed first so that the comparison also runs over equal lengths whatever
/// the presented token's length.
pub fn token_matches(presented: &str, expected: &str) -> bool {
    let (a, b) = (
        Sha256::digest(presented.as_bytes()),
        Sha256::digest(expected.as_bytes()),
    );
    a.iter()
        .zip(b.iter())
        .fold(0u8, |diff, (x, y)| diff | (x ^ y))
        == 0
}

/// Whether `headers` carry `Authorization: Bearer <expected>`. No expected token: never.
pub(super) fn authorised(headers: &HeaderMap, expected: Option<&ApiToken>) -> bool {
    let Some(expected) = expected else {
        return false;
    };
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .is_some_and(|presented| expected.matches(presented.trim()))
}

/// `None` when `headers` carry the API's token, else the 401 to answer with.
pub(super) fn refusal(headers: &HeaderMap, context: &ApiContext) -> Option<Response> {
    if authorised(headers, context.token.as_ref()) {
        None
    } else {
        tracing::debug!("API request without a valid bearer token refused");
        Some(unauthorised())
    }
}

/// 401 with the `WWW-Authenticate` challenge RFC 6750 asks for and a JSON error.
pub(super) fn unauthorised() -> Response {
    let mut response = super::error(
        StatusCode::UNAUTHORIZED,
        "missing or wrong bearer token (Authorization: Bearer <the repository's api-token>)",
    );
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_is_accepted() {
        let mut headers = HeaderMap::new();
        let token = ApiToken::new("s3cret");
        assert!(!authorised(&headers, Some(&token)));
        headers.insert(header::AUTHORIZATION, "Bearer s3cret".parse().unwrap());
        assert!(authorised(&headers, Some(&token)));
        assert!(!authorised(&headers, Some(&ApiToken::new("s3cre"))));
        assert!(!authorised(&headers, Some(&ApiToken::new(""))));
        assert!(!authorised(&headers, None));
        headers.insert(header::AUTHORIZATION, "Basic s3cret".parse().unwrap());
        assert!(!authorised(&headers, Some(&token)));
        assert_eq!(format!("{token:?}"), "ApiToken(<redacted>)");
    }
}
