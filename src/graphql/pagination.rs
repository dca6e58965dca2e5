//! One way to page every list: Relay cursors (`first`/`after`) or page numbers (`page`/
//! `pageSize`, which the REST layer uses). Both become an offset and a limit over a stable order.

use async_graphql::connection::{Connection, CursorType, Edge};
use async_graphql::{OutputType, SimpleObject};
use base64::Engine as _;

use crate::error::{AppError, AppResult, FieldError};

pub const DEFAULT_PAGE_SIZE: u64 = 50;
pub const MAX_PAGE_SIZE: u64 = 500;

/// The largest row position a cursor can name. Databases take offsets as signed 64-bit
/// integers, and the row after the cursor's must still be one: a larger number in a cursor a
/// client made up is refused when it is decoded, not found out by the database driver.
pub const MAX_CURSOR: u64 = i64::MAX as u64 - 1;

/// An opaque cursor: the position of a row in the list's order (at most [`MAX_CURSOR`]).
pub struct OffsetCursor(pub u64);

impl CursorType for OffsetCursor {
    type Error = std::io::Error;

    fn decode_cursor(s: &str) -> Result<Self, Self::Error> {
        let bad = || std::io::Error::new(std::io::ErrorKind::InvalidInput, "invalid cursor");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let n = text
            .strip_prefix("o:")
            .and_then(|n| n.parse::<u64>().ok())
            .filter(|n| *n <= MAX_CURSOR)
            .ok_or_else(bad)?;
        Ok(Self(n))
    }

    fn encode_cursor(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("o:{}", self.0))
    }
}

/// Paging arguments accepted by every list field (flat arguments in the schema).
#[derive(Clone, Debug, Default)]
pub struct PageArgs {
    /// Relay: how many rows after `after` (default 50, at most 500).
    pub first: Option<i32>,
    /// Relay: the cursor of the last row already seen.
    pub after: Option<String>,
    /// Page number from 1 (page-based access; ignores `first`/`after`).
    pub page: Option<i32>,
    /// Rows per page (default 50, at most 500).
    pub page_size: Option<i32>,
}

/// A resolved window over a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub offset: u64,
    pub limit: u64,
}

impl PageArgs {
    /// # Errors
    /// `VALIDATION_FAILED` for a page below 1, a size outside 1..=500 or a malformed cursor.
    pub fn window(&self) -> AppResult<Window> {
        let size_arg = self.page_size.or(self.first);
        let limit = match size_arg {
            None => DEFAULT_PAGE_SIZE,
            Some(n) if n >= 1 && (n as u64) <= MAX_PAGE_SIZE => n as u64,
            Some(_) => {
                return Err(AppError::validation(vec![FieldError {
                    field: if self.page_size.is_some() {
                        "pageSize"
                    } else {
                        "first"
                    }
                    .into(),
                    message: format!("must be between 1 and {MAX_PAGE_SIZE}"),
                }]))
            }
        };
        if let Some(page) = self.page {
            if page < 1 {
                return Err(AppError::invalid("page", "must be 1 or more"));
            }
            return Ok(Window {
                offset: (page as u64 - 1) * limit,
                limit,
            });
        }
        let offset = match &self.after {
            Some(cursor) => {
                OffsetCursor::decode_cursor(cursor)
                    .map_err(|_| AppError::invalid("after", "is not a cursor from this list"))?
                    .0
                    + 1
            }
            None => 0,
        };
        Ok(Window { offset, limit })
    }
}

/// A page of rows plus the total, as services return it.
pub struct Paged<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub window: Window,
}

/// Page-number facts every connection carries, for page-based clients.
#[derive(SimpleObject)]
pub struct PageFields {
    /// Rows in the whole list.
    pub total_count: u64,
    /// This page's number (from 1).
    pub page: u64,
    /// Rows per page.
    pub page_size: u64,
    /// Number of pages (0 for an empty list).
    pub total_pages: u64,
}

/// The GraphQL connection of a page.
pub type PagedConnection<T> = Connection<OffsetCursor, T, PageFields>;

impl<T: OutputType> Paged<T> {
    pub fn into_connection(self) -> PagedConnection<T> {
        let Window { offset, limit } = self.window;
        let has_next = offset + (self.items.len() as u64) < self.total;
        let mut connection = Connection::with_additional_fields(
            offset > 0,
            has_next,
            PageFields {
                total_count: self.total,
                page: offset / limit + 1,
                page_size: limit,
                total_pages: self.total.div_ceil(limit),
            },
        );
        connection.edges.extend(
            self.items
                .into_iter()
                .enumerate()
                .map(|(i, item)| Edge::new(OffsetCursor(offset + i as u64), item)),
        );
        connection
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_cursors_become_windows() {
        let args = |page, size| PageArgs {
            page,
            page_size: size,
            ..Default::default()
        };
        assert_eq!(
            args(None, None).window().unwrap(),
            Window {
                offset: 0,
                limit: 50
            }
        );
        assert_eq!(
            args(Some(3), Some(10)).window().unwrap(),
            Window {
                offset: 20,
                limit: 10
            }
        );
        assert!(args(Some(0), None).window().is_err());
        assert!(args(None, Some(501)).window().is_err());
        let after = PageArgs {
            first: Some(5),
            after: Some(OffsetCursor(9).encode_cursor()),
            ..Default::default()
        };
        assert_eq!(
            after.window().unwrap(),
            Window {
                offset: 10,
                limit: 5
            }
        );
        let bad = PageArgs {
            after: Some("garbage".into()),
            ..Default::default()
        };
        assert!(bad.window().is_err());
        // Positions a database cannot take are refused, not wrapped or passed on.
        for n in [MAX_CURSOR + 1, i64::MAX as u64, u64::MAX] {
            let beyond = PageArgs {
                after: Some(OffsetCursor(n).encode_cursor()),
                ..Default::default()
            };
            assert!(beyond.window().is_err(), "{n}");
        }
        let last = PageArgs {
            after: Some(OffsetCursor(MAX_CURSOR).encode_cursor()),
            ..Default::default()
        };
        assert_eq!(last.window().unwrap().offset, i64::MAX as u64);
    }
}

/// Sort direction of a list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, async_graphql::Enum)]
pub enum OrderDirection {
    Asc,
    #[default]
    Desc,
}

impl OrderDirection {
    pub fn order(self) -> sea_orm::Order {
        match self {
            Self::Asc => sea_orm::Order::Asc,
            Self::Desc => sea_orm::Order::Desc,
        }
    }
}
