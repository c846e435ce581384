//! Page tokens: opaque to clients. Inside, a keyset cursor (the last id returned) for tables, or a
//! position for short lists computed whole on each call (players online, bans, game types).

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

/// A validated `page_size`: `default` when unset, at most `max`.
fn checked_size(page_size: i32, default: u64, max: u64) -> ApiResult<u64> {
    match page_size {
        0 => Ok(default),
        n if n < 0 => Err(ApiError::invalid("page_size", "must not be negative")),
        n => Ok(u64::try_from(n).unwrap_or(max).min(max)),
    }
}

/// The value inside a `page_token` of the kind `prefix`, or a clear error. `None` for no token.
fn token_value<T: std::str::FromStr>(page_token: &str, prefix: &str) -> ApiResult<Option<T>> {
    if page_token.is_empty() {
        return Ok(None);
    }
    let bad = || ApiError::invalid("page_token", "is not a token from a previous response");
    let raw = URL_SAFE_NO_PAD.decode(page_token).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    text.strip_prefix(prefix)
        .and_then(|s| s.parse::<T>().ok())
        .map(Some)
        .ok_or_else(bad)
}

/// Validates `page_size` and decodes `page_token`.
pub fn parse(page_size: i32, page_token: &str) -> ApiResult<Page> {
    Ok(Page {
        size: checked_size(page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?,
        after: token_value(page_token, "id:")?,
    })
}

/// The token that continues after `last_id`, or empty when `returned < size` (no more rows).
pub fn next_token(returned: usize, size: u64, last_id: Option<i64>) -> String {
    match last_id {
        Some(id) if returned as u64 >= size => URL_SAFE_NO_PAD.encode(format!("id:{id}")),
        _ => String::new(),
    }
}

/// A validated page request over a list computed whole: where to start and how many to return.
#[derive(Debug, Clone, Copy)]
pub struct Slice {
    /// Items to return.
    pub size: usize,
    /// Index of the first item.
    pub start: usize,
}

/// Validates `page_size` and decodes a position `page_token`. Such lists are short, so an unset
/// `page_size` means the largest page, `max`: a client that does not page still sees everything
/// typical.
pub fn parse_slice(page_size: i32, page_token: &str, max: usize) -> ApiResult<Slice> {
    let max64 = u64::try_from(max).unwrap_or(u64::MAX);
    let size = checked_size(page_size, max64, max64)?;
    Ok(Slice {
        size: usize::try_from(size).unwrap_or(max),
        start: token_value(page_token, "at:")?.unwrap_or(0),
    })
}

impl Slice {
    /// This page of `items`, and the token for the next one (empty at the end).
    pub fn take<T>(self, items: Vec<T>) -> (Vec<T>, String) {
        let total = items.len();
        let page: Vec<T> = items.into_iter().skip(self.start).take(self.size).collect();
        let end = self.start.saturating_add(page.len());
        let next = if end < total {
            URL_SAFE_NO_PAD.encode(format!("at:{end}"))
        } else {
            String::new()
        };
        (page, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_walk_a_list_and_garbage_is_invalid_argument() {
        let items: Vec<u32> = (0..7).collect();
        let mut token = String::new();
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let (page, next) = parse_slice(3, &token, 500)
                .expect("slice")
                .take(items.clone());
            seen.extend(page);
            pages += 1;
            if next.is_empty() {
                break;
            }
            token = next;
        }
        assert_eq!(seen, items);
        assert_eq!(pages, 3);
        assert_eq!(parse_slice(0, "", 500).expect("slice").size, 500);
        // A token of the other kind, or past the end, is handled without a panic.
        assert!(matches!(
            parse_slice(3, &next_token(3, 3, Some(9)), 500),
            Err(ApiError::InvalidArgument { .. })
        ));
        let far = URL_SAFE_NO_PAD.encode("at:99");
        let (page, next) = parse_slice(3, &far, 500).expect("slice").take(items);
        assert!(page.is_empty() && next.is_empty());
    }

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
