//! Every error the service answers is JSON `{"code": ..., "message": ...}` with a stable code.
//!
//! Handlers return [`ApiError`]; errors made by middleware (body limit, decompression, timeout,
//! unknown routes) are rewritten into the same shape by [`json_errors`], which also counts every
//! rejected request by its code; a handler that panics gets a 500 from [`panic_response`].

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable code, e.g. `invalid_value`, `body_too_large`, `unauthorized`.
    pub code: String,
    /// What was wrong, naming the offending value, and what to do.
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for a Retry-After header (503s).
    pub retry_after: Option<u32>,
}

/// The code of an error response, attached to it so that middleware can count it.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", message)
    }
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        )
    }
    /// 503 with Retry-After: the client should try again shortly.
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            retry_after: Some(1),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
        }
    }
    pub fn internal(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, code, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code.to_string(),
            message: self.message,
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp.extensions_mut().insert(ErrorCode(self.code));
        resp
    }
}

/// The code for an error response some middleware made (not an [`ApiError`]).
fn code_for_status(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => ("body_too_large", "the request body is larger than the limit (max_body_bytes)"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_encoding",
            "unsupported Content-Encoding: send the body uncompressed or gzip-compressed",
        ),
        StatusCode::REQUEST_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => {
            ("timeout", "the request took longer than the limit (request_timeout); retry, or send smaller batches")
        }
        StatusCode::NOT_FOUND => ("not_found", "no such endpoint; see /openapi.json"),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "method not allowed on this endpoint; see /openapi.json"),
        StatusCode::UNAUTHORIZED => ("unauthorized", "missing or invalid bearer token"),
        s if s.is_client_error() => ("bad_request", "the request was refused"),
        _ => ("internal_error", "internal error"),
    }
}

/// Middleware (outermost): rewrite any error response that is not already JSON from
/// [`ApiError`] into `{code, message}`, and count rejected requests by code.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let code = match resp.extensions().get::<ErrorCode>() {
        Some(ErrorCode(code)) => *code,
        None => {
            let (code, message) = code_for_status(status);
            let mut err = ApiError::new(status, code, message);
            if status == StatusCode::REQUEST_TIMEOUT || status == StatusCode::SERVICE_UNAVAILABLE {
                err.status = StatusCode::SERVICE_UNAVAILABLE;
                err.retry_after = Some(1);
            }
            metrics::counter!("tidewatch_requests_rejected_total", "reason" => code).increment(1);
            let (parts, _) = resp.into_parts();
            let mut new = err.into_response();
            // Keep headers the middleware set (Accept-Encoding on 415, say), but not its body's.
            for (name, value) in parts.headers.iter() {
                if name != header::CONTENT_TYPE
                    && name != header::CONTENT_LENGTH
                    && !new.headers().contains_key(name)
                {
                    new.headers_mut().insert(name.clone(), value.clone());
                }
            }
            return new;
        }
    };
    metrics::counter!("tidewatch_requests_rejected_total", "reason" => code).increment(1);
    resp
}

/// The answer to a request whose handler panicked (`app::catch_panics`): a 500 `internal_error`
/// in the usual `{code, message}` shape instead of a connection closed without an answer. The
/// panic's message goes to the log only: it may quote data.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = detail, "a request handler panicked");
    ApiError::internal(
        "internal_error",
        "the service hit an internal error on this request (a bug; its log has the details)",
    )
    .into_response()
}

/// The JSON 404 for unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; see /openapi.json for the API")
}
