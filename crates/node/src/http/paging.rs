//! Paging of the API's lists. A request names how many items it wants (`limit`, 1 to the node's
//! `list_len_max`; each list has its default) and where the page before ended: a cursor the node
//! made, `before` for a list ordered newest first and `after` for one ordered oldest first. The
//! answer is the page as a JSON array and, while more items remain, a `Link` header (RFC 8288)
//! whose `rel="next"` target is the next page: the same list, filters and `limit`, with the
//! cursor of the page's last item. No `Link` means the list is complete; no list is cut short
//! without one.
//!
//! A cursor is the place of the last item in what the store orders by (an id, a sort key, or for
//! the record order the message itself), so that pages are exact: an item arriving between two
//! pages is not read twice and moves no other item. Every cursor is parsed strictly: anything the
//! node could not have made is a 400 `bad_cursor`, as a `limit` out of range is a 400
//! `bad_limit`. A cursor holds only digits, lowercase hex and dots, so it goes into a URL as it is.
//!
//! The lists bounded by the roster (peers, links, schemas) are whole and do not page.

use adi_store::{CheckpointKey, InboxKey, TimeKey};
use adi_wire::{EnvelopeHash, LineId};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::error::ApiError;
use crate::state::NodeState;

/// The length of a page: the request's `limit`, which must be within 1 to the node's
/// `list_len_max`, or else the list's `default` (at most `list_len_max`).
pub(crate) fn page_len(node: &NodeState, limit: Option<usize>, default: usize) -> Result<usize, ApiError> {
    let max = node.runtime_limits.list_len_max;
    match limit {
        None => Ok(default.clamp(1, max.max(1))),
        Some(n) if n >= 1 && n <= max => Ok(n),
        Some(n) => {
            Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_limit", format!("limit {n} is not within 1 to {max}")))
        }
    }
}

/// Cuts what was read for a page of `limit` items (one more than it holds, to know whether more
/// remain) down to the page; returns it and, when more remained, the cursor of the next page,
/// which `place` makes of the page's last item.
pub(crate) fn cut<R>(
    mut rows: Vec<R>,
    limit: usize,
    place: impl FnOnce(&R) -> Result<String, ApiError>,
) -> Result<(Vec<R>, Option<String>), ApiError> {
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = match rows.last() {
        Some(last) if more => Some(place(last)?),
        _ => None,
    };
    Ok((rows, next))
}

/// A list's address, to link its next page: its path and the filters of the request.
pub(crate) struct ListUrl {
    path: String,
    filters: String,
}

impl ListUrl {
    pub(crate) fn new(path: impl Into<String>) -> ListUrl {
        ListUrl { path: path.into(), filters: String::new() }
    }

    /// Keeps a filter of the request in the next page's link; `value` is one the node made
    /// (`true`), safe in a URL as it is.
    pub(crate) fn filter(mut self, name: &str, value: &str) -> ListUrl {
        self.filters.push_str(&format!("{name}={value}&"));
        self
    }

    /// The `Link` to the page that starts at `cursor` (`param` is `after` or `before`), if more
    /// remain.
    pub(crate) fn next(&self, limit: usize, param: &str, cursor: Option<String>) -> Option<String> {
        cursor.map(|c| format!("<{}?{}limit={limit}&{param}={c}>; rel=\"next\"", self.path, self.filters))
    }
}

/// A page of a list as the API answers it: the items as a JSON array, and the `Link` to the
/// next page when more remain.
pub struct Paged<T> {
    items: Vec<T>,
    next: Option<String>,
}

impl<T> Paged<T> {
    pub(crate) fn new(items: Vec<T>, next: Option<String>) -> Paged<T> {
        Paged { items, next }
    }
}

impl<T: Serialize> IntoResponse for Paged<T> {
    fn into_response(self) -> Response {
        let mut response = Json(self.items).into_response();
        // A link is made of the node's own path and cursors: always a valid header value.
        if let Some(link) = self.next.and_then(|l| HeaderValue::from_str(&l).ok()) {
            response.headers_mut().insert(header::LINK, link);
        }
        response
    }
}

/// The refusal of a cursor the node did not make for this list; `param` is `after` or `before`.
pub(crate) fn bad_cursor(param: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "bad_cursor",
        format!("`{param}` is not a cursor of this list: take the one of the `Link` header of the page before"),
    )
}

/// A cursor's `n` parts, separated by dots.
fn parts<'a>(cursor: &'a str, n: usize, param: &str) -> Result<Vec<&'a str>, ApiError> {
    let parts: Vec<&str> = cursor.splitn(n, '.').collect();
    if parts.len() == n {
        Ok(parts)
    } else {
        Err(bad_cursor(param))
    }
}

/// A number as the node writes one: decimal digits, no sign and no leading zero, within the
/// store's integers (63 bits).
fn number(text: &str) -> Option<u64> {
    text.parse::<u64>().ok().filter(|n| i64::try_from(*n).is_ok() && n.to_string() == text)
}

/// Bytes as the node writes them: lowercase hex, two digits a byte.
fn bytes<const N: usize>(text: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    let lowercase = text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (lowercase && hex::decode_to_slice(text, &mut out).is_ok()).then_some(out)
}

/// `before`: an id of a list ordered newest first.
pub(crate) fn before_id(cursor: Option<&str>) -> Result<Option<u64>, ApiError> {
    cursor.map(|c| number(c).ok_or_else(|| bad_cursor("before"))).transpose()
}

/// `after` in the record order of a line's messages: a message id.
pub(crate) fn after_message(cursor: Option<&str>) -> Result<Option<EnvelopeHash>, ApiError> {
    cursor.map(|c| bytes(c).map(EnvelopeHash).ok_or_else(|| bad_cursor("after"))).transpose()
}

/// The cursor of the inbox after `key`.
pub(crate) fn inbox_cursor(key: InboxKey) -> String {
    format!("{}.{}.{}", key.priority, key.created_ms, key.arrival)
}

/// `after` in the inbox: a message's sort key, as [`inbox_cursor`] writes it.
pub(crate) fn after_inbox(cursor: Option<&str>) -> Result<Option<InboxKey>, ApiError> {
    let parse = |c: &str| -> Option<InboxKey> {
        let p: Vec<&str> = c.splitn(3, '.').collect();
        let priority = u8::try_from(number(p.first()?)?).ok()?;
        Some(InboxKey { priority, created_ms: number(p.get(1)?)?, arrival: number(p.get(2)?)? })
    };
    cursor.map(|c| parse(c).filter(|k| inbox_cursor(*k) == c).ok_or_else(|| bad_cursor("after"))).transpose()
}

/// The cursor after an item of a list ordered by time, then id.
pub(crate) fn time_cursor(key: TimeKey) -> String {
    format!("{}.{}", key.created_ms, key.id.to_hex())
}

/// `after` in a list ordered by time, then id (decisions, translations).
pub(crate) fn after_time(cursor: Option<&str>) -> Result<Option<TimeKey>, ApiError> {
    let parse = |c: &str| -> Result<TimeKey, ApiError> {
        let p = parts(c, 2, "after")?;
        let created_ms = number(p[0]).ok_or_else(|| bad_cursor("after"))?;
        let id = bytes(p[1]).map(EnvelopeHash).ok_or_else(|| bad_cursor("after"))?;
        Ok(TimeKey { created_ms, id })
    };
    cursor.map(parse).transpose()
}

/// The cursor after a line, of the lines ordered by creation time, then id.
pub(crate) fn line_cursor(created_ms: u64, id: &str) -> String {
    format!("{created_ms}.{id}")
}

/// `after` in the lines: a line's creation time and id.
pub(crate) fn after_line(cursor: Option<&str>) -> Result<Option<(u64, LineId)>, ApiError> {
    let parse = |c: &str| -> Result<(u64, LineId), ApiError> {
        let p = parts(c, 2, "after")?;
        let created_ms = number(p[0]).ok_or_else(|| bad_cursor("after"))?;
        let id = bytes(p[1]).map(LineId).ok_or_else(|| bad_cursor("after"))?;
        Ok((created_ms, id))
    };
    cursor.map(parse).transpose()
}

/// The cursor after a checkpoint: its time, size, root and signer (in hex, last, as a signer's
/// code is any ASCII).
pub(crate) fn checkpoint_cursor(key: &CheckpointKey) -> String {
    format!("{}.{}.{}.{}", key.time_ms, key.size, hex::encode(key.root), hex::encode(&key.signer))
}

/// `after` in a line's checkpoints.
pub(crate) fn after_checkpoint(cursor: Option<&str>) -> Result<Option<CheckpointKey>, ApiError> {
    let parse = |c: &str| -> Option<CheckpointKey> {
        let p: Vec<&str> = c.splitn(4, '.').collect();
        let (time_ms, size, root) = (number(p.first()?)?, number(p.get(1)?)?, bytes::<32>(p.get(2)?)?);
        let signer = p.get(3)?;
        let lowercase = signer.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let signer = String::from_utf8(hex::decode(signer).ok().filter(|_| lowercase)?).ok()?;
        (!signer.is_empty() && signer.len() <= 255 && signer.is_ascii()).then_some(CheckpointKey {
            time_ms,
            size,
            signer,
            root,
        })
    };
    cursor.map(|c| parse(c).ok_or_else(|| bad_cursor("after"))).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_back_what_they_wrote_and_nothing_else() {
        let key = InboxKey { priority: 2, created_ms: 1_700_000_000_000, arrival: 17 };
        assert_eq!(after_inbox(Some(&inbox_cursor(key))).unwrap(), Some(key));
        let id = EnvelopeHash([0xab; 32]);
        let time = TimeKey { created_ms: 5, id };
        assert_eq!(after_time(Some(&time_cursor(time))).unwrap(), Some(time));
        assert_eq!(after_message(Some(&id.to_hex())).unwrap(), Some(id));
        let line = LineId([0x0c; 16]);
        assert_eq!(after_line(Some(&line_cursor(9, &line.to_hex()))).unwrap(), Some((9, line)));
        let checkpoint = CheckpointKey { time_ms: 3, size: 4, signer: "P.H".into(), root: [1; 32] };
        assert_eq!(after_checkpoint(Some(&checkpoint_cursor(&checkpoint))).unwrap(), Some(checkpoint));
        assert_eq!(before_id(Some("42")).unwrap(), Some(42));
        assert!(before_id(None).unwrap().is_none() && after_inbox(None).unwrap().is_none());

        let refused = |r: Result<(), ApiError>| {
            let e = r.expect_err("a cursor the node did not make");
            assert_eq!((e.status, e.code), (StatusCode::BAD_REQUEST, "bad_cursor"));
        };
        for bad in ["", "-1", "+1", "01", "1.0", " 1", "9223372036854775808", "18446744073709551616", "x"] {
            refused(before_id(Some(bad)).map(drop));
        }
        for bad in ["", "2.5", "2.5.7.1", "256.1.1", "02.1.1", "2..1", "2.1.1 ", "a.b.c"] {
            refused(after_inbox(Some(bad)).map(drop));
        }
        let upper = id.to_hex().to_uppercase();
        for bad in [upper.as_str(), "ab", &id.to_hex()[..63], "5"] {
            refused(after_message(Some(bad)).map(drop));
        }
        let long = format!("5.{}00", id.to_hex());
        for bad in ["5", "5.", &long, &format!("05.{}", id.to_hex()), &format!("5.{upper}")] {
            refused(after_time(Some(bad)).map(drop));
        }
        for bad in ["9", &format!("9.{}", &line.to_hex()[..30]), &format!("9.{}.1", line.to_hex())] {
            refused(after_line(Some(bad)).map(drop));
        }
        let root = hex::encode([1u8; 32]);
        for bad in [
            format!("3.4.{root}"),
            format!("3.4.{root}."),
            format!("3.4.{root}.5"),
            format!("3.4.{root}.5G48"),
            format!("3.4.{root}.5A48"),
            format!("3.4.{root}.ff"),
            format!("3.4.{}.5048", &root[..62]),
        ] {
            refused(after_checkpoint(Some(&bad)).map(drop));
        }
    }

    #[test]
    fn a_page_cut_from_one_item_more_says_whether_more_remain() {
        let place = |n: &u32| Ok(n.to_string());
        assert_eq!(cut(vec![1, 2, 3], 2, place).unwrap(), (vec![1, 2], Some("2".to_string())));
        assert_eq!(cut(vec![1, 2], 2, place).unwrap(), (vec![1, 2], None));
        assert_eq!(cut(Vec::<u32>::new(), 2, place).unwrap(), (vec![], None));
        let url = ListUrl::new("/api/v1/alarms").filter("all", "true");
        assert_eq!(
            url.next(2, "before", Some("7".into())).as_deref(),
            Some("</api/v1/alarms?all=true&limit=2&before=7>; rel=\"next\"")
        );
        assert_eq!(url.next(2, "before", None), None);
    }
}
