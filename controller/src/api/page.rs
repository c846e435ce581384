//! Page tokens: opaque to clients, a keyset cursor (the last id returned) inside.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{ApiError, ApiResult};

/// Default page size.
pub const DEFAULT_PAGE_SIZE: u64 = 50;
/// Largest page size.
pub const MAX_PAGE_SIZE: u64 = 500;

/// A validated page request.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// Rows to return.
    pub size: u64,
    /// Continue after this id (exclusive), if any.
    pub after: Option<i64>,
}

/// Validates `page_size` and decodes `page_token`.
pub fn parse(page_size: i32, page_token: &str) -> ApiResult<Page> {
    let size = match page_size {
        0 => DEFAULT_PAGE_SIZE,
        n if n < 0 => return Err(ApiError::invalid("page_size", "must not be negative")),
        n => u64::try_from(n).unwrap_or(MAX_PAGE_SIZE).min(MAX_PAGE_SIZE),
    };
    if page_token.is_empty() {
        return Ok(Page { size, after: None });
    }
    let bad = || ApiError::invalid("page_token", "is not a token from a previous response");
    let raw = URL_SAFE_NO_PAD.decode(page_token).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let id = text
        .strip_prefix("id:")
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(bad)?;
    Ok(Page {
        size,
        after: Some(id),
    })
}

/// The token that continues after `last_id`, or empty when `returned < size` (no more rows).
pub fn next_token(returned: usize, size: u64, last_id: Option<i64>) -> String {
    match last_id {
        Some(id) if returned as u64 >= size => URL_SAFE_NO_PAD.encode(format!("id:{id}")),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_is_invalid_argument() {
        let t = next_token(50, 50, Some(99));
        assert_eq!(parse(50, &t).expect("parse").after, Some(99));
        assert!(next_token(3, 50, Some(99)).is_empty());
        assert!(matches!(
            parse(0, "!!"),
            Err(ApiError::InvalidArgument { .. })
        ));
        assert!(matches!(
            parse(-1, ""),
            Err(ApiError::InvalidArgument { .. })
        ));
        assert_eq!(parse(10_000, "").expect("parse").size, MAX_PAGE_SIZE);
    }
}
