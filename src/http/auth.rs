//! Bearer-token authentication and `sysmon http new-token`.
//!
//! The comparison runs in constant time (`subtle`) so that response timing does not reveal how
//! many leading characters of a guess were right; a failed check answers a bare 401 so that it
//! says nothing about why. Only the token's length can leak, and a generated one has a fixed
//! length anyway.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::AppState;

/// The configured token.
pub struct Token(Vec<u8>);

impl Token {
    pub fn new(token: &str) -> Token {
        Token(token.trim().as_bytes().to_vec())
    }

    /// Whether an `Authorization` header carries this token as `Bearer <token>`.
    pub fn accepts(&self, header: Option<&HeaderValue>) -> bool {
        let Some(presented) = header.and_then(|h| bearer(h.as_bytes())) else {
            return false;
        };
        bool::from(self.0.as_slice().ct_eq(presented))
    }
}

/// The credentials of a `Bearer` authorization (scheme case-insensitive, RFC 7235).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    const SCHEME: &[u8] = b"bearer ";
    if value.len() <= SCHEME.len() || !value[..SCHEME.len()].eq_ignore_ascii_case(SCHEME) {
        return None;
    }
    let rest = &value[SCHEME.len()..];
    let start = rest.iter().position(|b| *b != b' ')?;
    let end = rest.iter().rposition(|b| *b != b' ')? + 1;
    Some(&rest[start..end])
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
    )
        .into_response()
}

/// Middleware for `/metrics`: the token when one is configured; without one (loopback only,
/// enforced at startup) it passes.
pub(super) async fn require(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(token) = &state.token
        && !token.accepts(req.headers().get(header::AUTHORIZATION))
    {
        return unauthorized();
    }
    next.run(req).await
}

/// Middleware for the API and the stream: always the token; without a configured one, 403 and
/// how to set it.
pub(super) async fn require_configured(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    match &state.token {
        None => (
            StatusCode::FORBIDDEN,
            axum::Json(serde_json::json!({
                "error": "the API needs http.token or http.token_file to be set"
            })),
        )
            .into_response(),
        Some(token) if !token.accepts(req.headers().get(header::AUTHORIZATION)) => unauthorized(),
        Some(_) => next.run(req).await,
    }
}

/// 32 bytes from the operating system's random number generator, as 64 hex digits.
pub fn new_token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("cannot read random bytes: {e}"))?;
    let mut out = String::with_capacity(64);
    for b in bytes {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).expect("header")
    }

    #[test]
    fn only_the_exact_token_as_a_bearer_credential_is_accepted() {
        let t = Token::new("0123456789abcdef0123");
        assert!(t.accepts(Some(&h("Bearer 0123456789abcdef0123"))));
        assert!(t.accepts(Some(&h("bearer 0123456789abcdef0123"))));
        assert!(t.accepts(Some(&h("Bearer   0123456789abcdef0123 "))));
        assert!(!t.accepts(None));
        assert!(!t.accepts(Some(&h("Bearer"))));
        assert!(!t.accepts(Some(&h("Bearer "))));
        assert!(!t.accepts(Some(&h("Basic 0123456789abcdef0123"))));
        assert!(!t.accepts(Some(&h("Bearer 0123456789abcdef012"))));
        assert!(!t.accepts(Some(&h("Bearer 0123456789abcdef01234"))));
        assert!(!t.accepts(Some(&h("Bearer 1123456789abcdef0123"))));
        assert!(!t.accepts(Some(&h("0123456789abcdef0123"))));
    }

    #[test]
    fn new_tokens_are_64_hex_digits_and_differ() {
        let a = new_token().expect("token");
        let b = new_token().expect("token");
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
