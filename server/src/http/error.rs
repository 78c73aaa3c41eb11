//! Every failure an HTTP client can see, mapped once to a status and a JSON body
//! `{"error": "<code>", "message": "<text>"}`. Messages carry no personal data.

use crate::accounts::AccountError;
use crate::storage::StorageError;
use fieldsync_core::protocol::{ProtocolError, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};
use serde::Serialize;
use warp::http::header::ALLOW;
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;
use warp::Reply;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// Values the record model refuses: a 400 that also lists each problem (field, code,
    /// message) for the page to name in the reader's language.
    #[error("{}", problems_text(.0))]
    Invalid(Vec<fieldsync_core::model::Problem>),
    #[error("missing, unknown or revoked device token")]
    Unauthorized,
    /// A device enrolled before protocol 3 (without a signing key) pushed changes.
    #[error("this device has no signing key: enrol again")]
    Unsigned,
    #[error("wrong username or password")]
    BadCredentials,
    #[error("this account may not do that")]
    Forbidden,
    #[error("{0}")]
    Denied(String),
    #[error("{0} not found")]
    NotFound(String),
    /// A known path asked with a method it does not answer; the methods it does.
    #[error("this path answers only {0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error(
        "upgrade needed: this server speaks sync protocol {min}..={max}, the client sent {found}"
    )]
    UpgradeNeeded { found: String, min: u8, max: u8 },
    #[error("request body too large (limit {0} bytes)")]
    TooLarge(usize),
    #[error("request body too large (sync bodies up to 1 MiB, JSON bodies up to 64 KiB)")]
    BodyTooLarge,
    #[error("{0}")]
    PushTooLarge(String),
    #[error("too many login attempts; retry in {0} s")]
    Throttled(u64),
    /// The server is busy with others; retry after the delay.
    #[error("{message}")]
    Busy {
        retry_after_secs: u64,
        message: String,
    },
    #[error("the request took too long to arrive")]
    Timeout,
    /// The data disk is full: reads still work, writes wait until space is freed.
    #[error("the server's disk is full; your changes are safe on the phone, retry later")]
    DiskFull,
    #[error("internal error")]
    Internal,
}

fn problems_text(problems: &[fieldsync_core::model::Problem]) -> String {
    let each: Vec<String> = problems
        .iter()
        .map(|p| format!("{}: {}", p.field, p.message))
        .collect();
    format!("validation failed: {}", each.join("; "))
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    supported_protocol: Option<[u8; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    problems: Option<&'a [fieldsync_core::model::Problem]>,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::Invalid(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized | ApiError::Unsigned | ApiError::BadCredentials => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::Forbidden | ApiError::Denied(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::UpgradeNeeded { .. } => StatusCode::UPGRADE_REQUIRED,
            ApiError::TooLarge(_) | ApiError::BodyTooLarge | ApiError::PushTooLarge(_) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::Throttled(_) | ApiError::Busy { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Timeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::DiskFull => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) | ApiError::Invalid(_) => "bad_request",
            ApiError::Unauthorized | ApiError::Unsigned => "unauthorized",
            ApiError::BadCredentials => "bad_credentials",
            ApiError::Forbidden | ApiError::Denied(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::UpgradeNeeded { .. } => "upgrade_needed",
            ApiError::TooLarge(_) | ApiError::BodyTooLarge | ApiError::PushTooLarge(_) => {
                "payload_too_large"
            }
            ApiError::Throttled(_) | ApiError::Busy { .. } => "too_many_requests",
            ApiError::Timeout => "request_timeout",
            ApiError::DiskFull => "disk_full",
            ApiError::Internal => "internal",
        }
    }
}

impl Reply for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: self.code(),
            message: self.to_string(),
            supported_protocol: matches!(self, ApiError::UpgradeNeeded { .. })
                .then_some([MIN_PROTOCOL_VERSION, PROTOCOL_VERSION]),
            problems: match &self {
                ApiError::Invalid(p) => Some(p),
                _ => None,
            },
        };
        let mut response =
            warp::reply::with_status(warp::reply::json(&body), self.status()).into_response();
        if let ApiError::MethodNotAllowed(allow) = &self {
            if let Ok(v) = HeaderValue::from_str(allow) {
                response.headers_mut().insert(ALLOW, v);
            }
        }
        let retry_after = match self {
            ApiError::Throttled(secs) => Some(secs),
            ApiError::Busy {
                retry_after_secs, ..
            } => Some(retry_after_secs),
            ApiError::DiskFull => Some(DISK_FULL_RETRY_SECS),
            _ => None,
        };
        if let Some(v) = retry_after.and_then(|secs| secs.to_string().parse().ok()) {
            response.headers_mut().insert("retry-after", v);
        }
        response
    }
}

static DISK_FULL_LOG: crate::listener::RateLimitedLog = crate::listener::RateLimitedLog::new();

/// How long a phone should wait before retrying a write while the disk is full.
pub(crate) const DISK_FULL_RETRY_SECS: u64 = 300;

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::DiskFull => {
                DISK_FULL_LOG.warn(|suppressed| {
                    tracing::error!(suppressed, "write refused: the data disk is full");
                });
                ApiError::DiskFull
            }
            StorageError::TooLarge(why) => ApiError::PushTooLarge(why),
            StorageError::NotFound(what) => ApiError::NotFound(what),
            StorageError::Conflict(what) => ApiError::Conflict(what),
            StorageError::Invalid(why) => ApiError::BadRequest(why),
            StorageError::Core(fieldsync_core::CoreError::Validation(problems)) => {
                ApiError::Invalid(problems)
            }
            StorageError::Core(
                e @ (fieldsync_core::CoreError::ChangeTooLarge { .. }
                | fieldsync_core::CoreError::ChangeTooManyOps { .. }),
            ) => ApiError::PushTooLarge(e.to_string()),
            other => {
                tracing::error!(error = %other, "storage failure");
                ApiError::Internal
            }
        }
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::BadCredentials => ApiError::BadCredentials,
            AccountError::Invalid(why) => ApiError::BadRequest(why),
            AccountError::Forbidden(why) => ApiError::Denied(why),
            AccountError::Storage(s) => s.into(),
        }
    }
}

impl From<ProtocolError> for ApiError {
    fn from(e: ProtocolError) -> Self {
        match e {
            ProtocolError::UpgradeNeeded { found, min, max } => ApiError::UpgradeNeeded {
                found: found.to_string(),
                min,
                max,
            },
            ProtocolError::TooLarge { limit } => ApiError::TooLarge(limit),
            ProtocolError::Malformed(why) => ApiError::BadRequest(why),
        }
    }
}

/// Turns warp's own rejections (no route, wrong method, body too large, bad JSON, bad query)
/// into the same JSON errors.
pub async fn recover(rejection: warp::Rejection) -> Result<Response, std::convert::Infallible> {
    let error = if rejection.is_not_found() {
        ApiError::NotFound("route".into())
    } else if let Some(super::methods::NotAllowed { allow }) = rejection.find() {
        ApiError::MethodNotAllowed(allow.clone())
    } else if let Some(super::InvalidJson(e)) = rejection.find() {
        ApiError::BadRequest(format!("invalid JSON body: {e}"))
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        ApiError::BodyTooLarge
    } else if rejection.find::<warp::reject::LengthRequired>().is_some() {
        ApiError::BadRequest("a Content-Length header is required".into())
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        // The document lists the method but no route serves it (the route table test
        // catches this): as if it were not listed.
        ApiError::NotFound("route for this method".into())
    } else if let Some(super::query::BadQuery(why)) = rejection.find() {
        ApiError::BadRequest(why.clone())
    } else if rejection.find::<warp::reject::InvalidQuery>().is_some() {
        ApiError::BadRequest(
            "invalid query string: an unknown parameter or a value of the wrong type".into(),
        )
    } else if rejection
        .find::<warp::reject::UnsupportedMediaType>()
        .is_some()
    {
        ApiError::BadRequest("unsupported content type".into())
    } else if let Some(e) = rejection.find::<warp::reject::InvalidHeader>() {
        ApiError::BadRequest(e.to_string())
    } else {
        tracing::warn!(?rejection, "unhandled rejection");
        ApiError::BadRequest("bad request".into())
    };
    Ok(error.into_response())
}
