//! The few SQL pieces that differ between SQLite and PostgreSQL, and a small raw-statement
//! builder for the queries sea-query cannot say portably (JSON arrays, window functions).

use sea_orm::{DatabaseBackend, Statement, Value};

/// Whole seconds since the Unix epoch of a timestamp column, as a 64-bit integer, so buckets
/// and durations are integer arithmetic on both engines (SQLite keeps timestamps as text).
pub fn epoch(backend: DatabaseBackend, column: &str) -> String {
    match backend {
        DatabaseBackend::Postgres => format!("CAST(FLOOR(EXTRACT(EPOCH FROM {column})) AS BIGINT)"),
        _ => format!("CAST(strftime('%s', {column}) AS INTEGER)"),
    }
}

/// `COUNT(*)`: unlike `COUNT(id)` it can be answered from an index holding the grouped and
/// filtered columns alone (e.g. `(org_id, status, severity)`) without reading the rows.
pub fn count_all() -> sea_orm::sea_query::SimpleExpr {
    sea_orm::sea_query::Expr::cust("COUNT(*)")
}

/// A statement written with `?` placeholders, numbered for PostgreSQL as they are bound.
pub struct Sql {
    backend: DatabaseBackend,
    text: String,
    values: Vec<Value>,
}

impl Sql {
    pub fn new(backend: DatabaseBackend) -> Self {
        Self {
            backend,
            text: String::new(),
            values: Vec::new(),
        }
    }

    /// Appends SQL text (never user input).
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub fn bind(&mut self, value: impl Into<Value>) -> &mut Self {
        self.values.push(value.into());
        match self.backend {
            DatabaseBackend::Postgres => {
                let n = self.values.len();
                self.text.push_str(&format!("${n}"));
            }
            _ => self.text.push('?'),
        }
        self
    }

    pub fn epoch(&self, column: &str) -> String {
        epoch(self.backend, column)
    }

    pub fn build(self) -> Statement {
        Statement::from_sql_and_values(self.backend, self.text, self.values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_the_backend() {
        let mut pg = Sql::new(DatabaseBackend::Postgres);
        pg.push("a = ").bind(1).push(" AND b = ").bind(2);
        assert_eq!(pg.build().sql, "a = $1 AND b = $2");
        let mut lite = Sql::new(DatabaseBackend::Sqlite);
        lite.push("a = ").bind(1).push(" AND b = ").bind(2);
        assert_eq!(lite.build().sql, "a = ? AND b = ?");
    }
}
