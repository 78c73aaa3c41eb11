//! `POST /v1/sync`: one exchange of the sync protocol (docs/sync-protocol.md).

use super::error::ApiError;
use super::{auth_header, caller, respond, with_state, AppState, MAX_REQUEST_BYTES};
use bytes::Bytes;
use fieldsync_core::protocol::{
    compress, decode_request_body, CONTENT_TYPE, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION,
    VERSION_HEADER,
};
use warp::http::header::{CONTENT_ENCODING, CONTENT_TYPE as CONTENT_TYPE_HEADER};
use warp::reply::Response;
use warp::{Filter, Reply};

pub fn route(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::path!("v1" / "sync")
        .and(warp::post())
        .and(with_state(state))
        .and(warp::header::optional::<String>(VERSION_HEADER))
        .and(auth_header())
        .and(warp::body::content_length_limit(MAX_REQUEST_BYTES))
        .and(warp::body::bytes())
        .then(|state, version, auth, body| async move {
            respond(handle(state, version, auth, body).await)
        })
}

fn check_version(header: Option<String>) -> Result<(), ApiError> {
    let found =
        header.ok_or_else(|| ApiError::BadRequest(format!("missing {VERSION_HEADER} header")))?;
    match found.trim().parse::<u8>() {
        Ok(v) if (MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&v) => Ok(()),
        _ => Err(ApiError::UpgradeNeeded {
            found,
            min: MIN_PROTOCOL_VERSION,
            max: PROTOCOL_VERSION,
        }),
    }
}

async fn handle(
    state: AppState,
    version: Option<String>,
    auth: Option<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_version(version)?;
    let caller = caller(&state, auth).await?;
    let device = caller.device.id;
    let started = std::time::Instant::now();
    let (response, pushed) = state
        .blocking(move |storage| {
            let request = decode_request_body(&body)?;
            let pushed = request.push.len();
            Ok((storage.sync(&caller, &request)?, pushed))
        })
        .await?;
    tracing::info!(
        %device,
        pushed,
        acked = response.acked.len(),
        rejected = response.rejected.len(),
        held_need = response.need.len(),
        pulled = response.pull.len(),
        more = response.more,
        ms = started.elapsed().as_millis() as u64,
        "sync"
    );
    let mut reply =
        warp::reply::with_status(compress(&response.encode()), warp::http::StatusCode::OK)
            .into_response();
    let headers = reply.headers_mut();
    headers.insert(
        CONTENT_TYPE_HEADER,
        warp::http::HeaderValue::from_static(CONTENT_TYPE),
    );
    headers.insert(
        CONTENT_ENCODING,
        warp::http::HeaderValue::from_static("gzip"),
    );
    headers.insert(
        VERSION_HEADER,
        warp::http::HeaderValue::from(u16::from(PROTOCOL_VERSION)),
    );
    Ok(reply)
}
