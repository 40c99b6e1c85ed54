//! Request parts every area needs, with the service's errors: strict query strings (an unknown
//! parameter is a 400 naming it) and bodies read under the body limit (413 past it, also after
//! gzip decompression).

use axum::body::Body;
use axum::http::{header, HeaderMap, Uri};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Parse the query string into `T` (a struct with `#[serde(deny_unknown_fields)]`).
pub fn query<T: DeserializeOwned>(uri: &Uri) -> Result<T, ApiError> {
    let raw = uri.query().unwrap_or("");
    serde_urlencoded::from_str::<T>(raw).map_err(|e| {
        let msg = e.to_string();
        if let Some(rest) = msg.strip_prefix("unknown field `") {
            let name = rest.split('`').next().unwrap_or("");
            let valid = msg
                .split("expected ")
                .nth(1)
                .unwrap_or("none")
                .replace('`', "")
                .replace("one of ", "");
            return ApiError::bad_request(
                "unknown_parameter",
                format!("unknown query parameter \"{name}\"; valid parameters: {valid}"),
            );
        }
        ApiError::bad_request("invalid_parameter", format!("invalid query string: {msg}"))
    })
}

/// The media type of the request (lower case, without parameters such as charset).
pub fn content_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(
        v.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

/// Read the whole body. The limit layers make the stream fail past `max_body_bytes` (before and
/// after decompression); the decompression layer fails on corrupt gzip.
pub async fn body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|e| classify_body_error(&e, limit))
}

fn classify_body_error(e: &axum::Error, limit: usize) -> ApiError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return ApiError::too_large(format!(
                "the request body is larger than {limit} bytes (after decompression); send smaller batches"
            ));
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return ApiError::bad_request(
                "invalid_encoding",
                format!("the body could not be decompressed: {io}"),
            );
        }
        source = s.source();
    }
    ApiError::bad_request(
        "invalid_body",
        format!("the request body could not be read: {e}"),
    )
}
