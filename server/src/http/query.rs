//! What the routes with query strings share in reading them: a bad parameter is a 400 naming
//! it and what is wrong with it, an empty parameter is an absent one, a page size outside its
//! range is refused rather than quietly changed, and a commune filter is an area code of the
//! list, widened to the communes whose records lie in it across the 2025 merger.

use super::error::ApiError;
use crate::scope::communes_within;
use fieldsync_core::model::Areas;
use serde::de::DeserializeOwned;
use std::collections::BTreeSet;
use warp::Filter;

pub(super) fn bad(what: &str) -> ApiError {
    ApiError::BadRequest(what.to_owned())
}

/// A query string that does not fit its route, with what is wrong, naming the parameter.
#[derive(Debug)]
pub struct BadQuery(pub String);

impl warp::reject::Reject for BadQuery {}

/// The route's parameters read from the query string (none is the same as an empty one).
pub(super) fn params<T>() -> impl Filter<Extract = (T,), Error = warp::Rejection> + Clone
where
    T: DeserializeOwned + Send + 'static,
{
    warp::query::raw()
        .or(warp::any().map(String::new))
        .unify()
        .and_then(|raw: String| async move {
            read::<T>(&raw).map_err(|why| warp::reject::custom(BadQuery(why)))
        })
}

/// Reads `raw` into `T`. serde names an unknown, repeated or missing parameter itself but not
/// one whose value does not parse; that one is found by reading each parameter alone.
pub(super) fn read<T: DeserializeOwned>(raw: &str) -> Result<T, String> {
    let whole = match serde_urlencoded::from_str::<T>(raw) {
        Ok(params) => return Ok(params),
        Err(e) => e.to_string(),
    };
    // "unknown field `x`", "missing field `x`", "duplicate field `x`": named already.
    if whole.contains(" field `") {
        return Err(format!("query string: {whole}"));
    }
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(raw).map_err(|e| format!("query string: {e}"))?;
    for (name, value) in &pairs {
        let alone = serde_urlencoded::to_string([(name, value)]).unwrap_or_default();
        if let Err(e) = serde_urlencoded::from_str::<T>(&alone) {
            let why = e.to_string();
            if !why.starts_with("missing field") {
                return Err(format!("{name}: {why}"));
            }
        }
    }
    Err(format!("query string: {whole}"))
}

/// A page size: `default` when absent, else within `min..=max` or a 400 saying so.
pub(super) fn page_size(
    limit: Option<u32>,
    default: u32,
    min: u32,
    max: u32,
) -> Result<u32, ApiError> {
    match limit {
        None => Ok(default),
        Some(n) if (min..=max).contains(&n) => Ok(n),
        Some(n) => Err(bad(&format!("limit: {n} is outside {min}..={max}"))),
    }
}

/// The parameter, unless it is missing or blank (a form's empty select sends `commune=`).
pub(super) fn nonempty(value: Option<String>) -> Option<String> {
    value.filter(|s| !s.trim().is_empty())
}

/// `?commune=CODE`: the communes whose records lie in that area (old or new code, commune,
/// district or province; see [`communes_within`]).
pub(super) fn commune_filter(code: Option<String>) -> Result<Option<BTreeSet<String>>, ApiError> {
    nonempty(code)
        .map(|code| {
            if Areas::bundled().get(&code).is_none() {
                return Err(bad(&format!(
                    "commune: {code} is not an area code of the list (GET /v1/areas)"
                )));
            }
            Ok(communes_within(&code))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // read only through Debug
    struct Params {
        area: String,
        limit: Option<u32>,
        flag: Option<bool>,
    }

    fn why(raw: &str) -> String {
        read::<Params>(raw)
            .map(|p| format!("{p:?}"))
            .unwrap_or_else(|e| e)
    }

    #[test]
    fn a_bad_parameter_is_named_with_what_is_wrong() {
        assert!(why("area=62&limit=5").starts_with("Params"));
        assert_eq!(
            why("area=62&limit=abc"),
            "limit: invalid digit found in string"
        );
        assert_eq!(
            why("area=62&limit=-1"),
            "limit: invalid digit found in string"
        );
        assert!(
            why("area=62&flag=yes").starts_with("flag: "),
            "{}",
            why("area=62&flag=yes")
        );
        assert!(why("area=62&colour=red").contains("unknown field `colour`"));
        assert!(why("limit=5").contains("missing field `area`"));
        assert!(why("area=62&area=51").contains("duplicate field `area`"));
    }

    #[test]
    fn a_page_size_outside_its_range_is_refused() {
        assert_eq!(page_size(None, 50, 1, 500).ok(), Some(50));
        assert_eq!(page_size(Some(500), 50, 1, 500).ok(), Some(500));
        let refused = page_size(Some(501), 50, 1, 500).unwrap_err().to_string();
        assert_eq!(refused, "limit: 501 is outside 1..=500");
        assert!(page_size(Some(0), 50, 1, 500).is_err());
    }
}
