//! What the list routes (records, duplicates) share in reading their query strings: an empty
//! parameter is an absent one, a bad value is a 400 naming it, and a commune filter is an area
//! code of the list, widened to the communes it covers across the 2025 merger.

use super::error::ApiError;
use crate::scope::communes_of;
use fieldsync_core::model::Areas;
use std::collections::BTreeSet;

pub(super) fn bad(what: &str) -> ApiError {
    ApiError::BadRequest(what.to_owned())
}

/// The parameter, unless it is missing or blank (a form's empty select sends `commune=`).
pub(super) fn nonempty(value: Option<String>) -> Option<String> {
    value.filter(|s| !s.trim().is_empty())
}

/// `?commune=CODE`: the communes of that area (old or new code, commune, district or province).
pub(super) fn commune_filter(code: Option<String>) -> Result<Option<BTreeSet<String>>, ApiError> {
    nonempty(code)
        .map(|code| {
            if Areas::bundled().get(&code).is_none() {
                return Err(bad(&format!("unknown area code {code}")));
            }
            Ok(communes_of(&[code]))
        })
        .transpose()
}
