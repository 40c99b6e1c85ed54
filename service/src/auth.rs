//! Bearer tokens: write endpoints always need one of the write tokens; read endpoints need a read
//! (or write) token when read tokens are configured, and are open otherwise.
//!
//! Tokens are compared as SHA-256 digests in constant time (`subtle`), against every configured
//! token without stopping at the first match, so neither the content nor the length of a token
//! leaks through timing. The presented token is never logged: the request span records only the
//! method and route.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use crate::config::Secret;
use crate::error::ApiError;
use crate::state::AppState;

/// A set of tokens, kept as digests.
#[derive(Clone, Default)]
pub struct Tokens {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} configured)", self.digests.len())
    }
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

impl Tokens {
    pub fn new(tokens: &[Secret]) -> Self {
        Tokens {
            digests: tokens.iter().map(|t| digest(t.expose())).collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Constant time in the presented token and in which configured token (if any) matches.
    pub fn verify(&self, presented: &str) -> bool {
        let d = digest(presented);
        let mut ok = Choice::from(0);
        for t in &self.digests {
            ok |= t.ct_eq(&d);
        }
        ok.into()
    }
}

/// The token of an `Authorization: Bearer <t>` header (or `Token <t>`, as InfluxDB clients send).
pub fn presented_token(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| {
        ApiError::unauthorized("unauthorized", "the Authorization header is not valid text")
    })?;
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value, ""));
    if !(scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token")) {
        return Err(ApiError::unauthorized(
            "unauthorized",
            "use an Authorization header of the form \"Bearer <token>\" (or \"Token <token>\")",
        ));
    }
    Ok(Some(token.trim()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// Decide whether a request with these headers may have this access.
pub fn check(state: &AppState, headers: &HeaderMap, access: Access) -> Result<(), ApiError> {
    let token = presented_token(headers)?;
    let open = access == Access::Read && state.read_tokens.is_empty();
    match token {
        None if open => Ok(()),
        None => Err(ApiError::unauthorized(
            "unauthorized",
            match access {
                Access::Write => {
                    "this endpoint needs a write token: send Authorization: Bearer <token>"
                }
                Access::Read => {
                    "this endpoint needs a read token: send Authorization: Bearer <token>"
                }
            },
        )),
        Some(t) => {
            // Evaluate both sets whatever the first answers (no early exit on the token's kind).
            let write = state.write_tokens.verify(t);
            let read = state.read_tokens.verify(t);
            let ok = match access {
                Access::Write => write,
                Access::Read => open | read | write,
            };
            if ok {
                Ok(())
            } else {
                Err(ApiError::unauthorized(
                    "invalid_token",
                    match access {
                        Access::Write => "the bearer token is not one of the write tokens",
                        Access::Read => "the bearer token is not one of the read or write tokens",
                    },
                ))
            }
        }
    }
}

/// Middleware for write endpoints (`route_layer(from_fn_with_state(state, auth::write))`).
pub async fn write(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    check(&state, req.headers(), Access::Write)?;
    Ok(next.run(req).await)
}

/// Middleware for read endpoints.
pub async fn read(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    check(&state, req.headers(), Access::Read)?;
    Ok(next.run(req).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_against_every_token() {
        let t = Tokens::new(&[Secret::new("alpha"), Secret::new("beta-longer")]);
        assert!(t.verify("alpha"));
        assert!(t.verify("beta-longer"));
        assert!(!t.verify("alph"));
        assert!(!t.verify("alphaa"));
        assert!(!t.verify(""));
        assert!(!Tokens::default().verify("alpha"));
    }

    #[test]
    fn parses_bearer_and_token_schemes() {
        let mut h = HeaderMap::new();
        assert_eq!(presented_token(&h).ok().flatten(), None);
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().expect("header"));
        assert_eq!(presented_token(&h).ok().flatten(), Some("abc"));
        h.insert(header::AUTHORIZATION, "Token xyz".parse().expect("header"));
        assert_eq!(presented_token(&h).ok().flatten(), Some("xyz"));
        h.insert(
            header::AUTHORIZATION,
            "Basic dXNlcjpwYXNz".parse().expect("header"),
        );
        assert!(presented_token(&h).is_err());
    }
}
