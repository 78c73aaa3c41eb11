//! JSON answers gzipped for clients that say they accept it: the supervisors' page is used over
//! slow links, and a page of records or of duplicate pairs shrinks about fivefold.

use bytes::Bytes;
use fieldsync_core::protocol::compress;
use http_body_util::BodyExt;
use warp::http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, VARY};
use warp::http::{HeaderMap, HeaderValue};
use warp::reply::Response;
use warp::Reply;

/// Smaller answers are not worth the work and the header bytes.
const MIN_BYTES: usize = 1024;

/// Whether the request's `Accept-Encoding` lists gzip.
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(ACCEPT_ENCODING).iter().any(|value| {
        value.to_str().is_ok_and(|list| {
            list.split(',')
                .any(|coding| coding.split(';').next().map(str::trim) == Some("gzip"))
        })
    })
}

/// `response` gzipped if it is JSON of at least [`MIN_BYTES`] and the client accepts gzip;
/// anything else (the sync protocol's own gzip bodies, the page's assets) as it is.
pub async fn gzip_json(accepts: bool, response: Response) -> Response {
    let json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !accepts || !json || response.headers().contains_key(CONTENT_ENCODING) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // JSON answers are built in memory: collecting them waits for nothing.
    let bytes: Bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return super::error::ApiError::Internal.into_response(),
    };
    if bytes.len() < MIN_BYTES {
        return Response::from_parts(parts, bytes.into());
    }
    let gzipped = Bytes::from(compress(&bytes));
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    parts
        .headers
        .append(VARY, HeaderValue::from_static("accept-encoding"));
    Response::from_parts(parts, gzipped.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_recognised_in_accept_encoding_lists() {
        let mut headers = HeaderMap::new();
        assert!(!accepts_gzip(&headers));
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("br, gzip;q=0.8"));
        assert!(accepts_gzip(&headers));
        headers.insert(
            ACCEPT_ENCODING,
            HeaderValue::from_static("deflate, x-gzip2"),
        );
        assert!(!accepts_gzip(&headers));
    }

    #[tokio::test]
    async fn large_json_is_gzipped_and_small_or_other_answers_are_not() {
        let big = serde_json::json!({ "records": vec!["Nguyễn Thị Hoà"; 200] });
        let answer = gzip_json(true, warp::reply::json(&big).into_response()).await;
        assert_eq!(answer.headers()[CONTENT_ENCODING], "gzip");
        let body = answer.into_body().collect().await.unwrap().to_bytes();
        let plain = fieldsync_core::protocol::decompress(&body, 1 << 20).unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&plain).unwrap(),
            big
        );

        let small = gzip_json(true, warp::reply::json(&"ok").into_response()).await;
        assert!(!small.headers().contains_key(CONTENT_ENCODING));
        let refused = gzip_json(false, warp::reply::json(&big).into_response()).await;
        assert!(!refused.headers().contains_key(CONTENT_ENCODING));
        let binary = gzip_json(
            true,
            warp::reply::with_header(vec![0u8; 4096], CONTENT_TYPE, "application/octet-stream")
                .into_response(),
        )
        .await;
        assert!(!binary.headers().contains_key(CONTENT_ENCODING));
    }
}
