use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::context::Role;
use crate::error::{AppError, AppResult};

/// A tenant: every other row belongs to exactly one.
#[derive(Clone, Debug, SimpleObject)]
pub struct Organization {
    pub id: Uuid,
    /// Short unique name, used in URLs.
    pub slug: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// Admins and owners must enable MFA; until they do, everything but MFA enrolment answers
    /// `MFA_REQUIRED`.
    pub require_admin_mfa: bool,
}

impl From<entity::organization::Model> for Organization {
    fn from(m: entity::organization::Model) -> Self {
        Self {
            id: m.id,
            slug: m.slug,
            name: m.name,
            created_at: m.created_at,
            require_admin_mfa: m.require_admin_mfa,
        }
    }
}

/// A person's membership in the caller's org.
#[derive(Clone, Debug, SimpleObject)]
pub struct Member {
    /// The user's id.
    pub id: Uuid,
    pub email: String,
    pub display_name: Option<String>,
    pub role: Role,
    /// When the user joined this org.
    pub joined_at: DateTime<Utc>,
    /// False once an admin deactivated the account: it cannot sign in, and its sessions and
    /// API keys stop working.
    pub active: bool,
}

/// An email address, lowercased and checked for a plausible shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// # Errors
    /// `VALIDATION_FAILED` on `field` when it is not an email address.
    pub fn parse(field: &str, raw: &str) -> AppResult<Self> {
        let value = raw.trim().to_lowercase();
        let valid = value.len() <= 254
            && value.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && local.len() <= 64
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains('@')
            })
            && !value.chars().any(|c| c.is_whitespace() || c.is_control());
        if valid {
            Ok(Self(value))
        } else {
            Err(AppError::invalid(field, "is not an email address"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// # Errors
/// `VALIDATION_FAILED` when the slug is not 2–63 lowercase letters, digits and dashes.
pub fn validate_slug(slug: &str) -> AppResult<()> {
    let ok = (2..=63).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(AppError::invalid(
            "slug",
            "must be 2-63 lowercase letters, digits or dashes",
        ))
    }
}

/// A slug derived from a display name.
pub fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    let mut slug: String = slug.chars().take(48).collect();
    if slug.len() < 2 {
        slug = format!("org-{}", &Uuid::new_v4().simple().to_string()[..8]);
    }
    slug
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse("email", " Alice@Example.COM ")
                .unwrap()
                .as_str(),
            "alice@example.com"
        );
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "alice@example",
            "a b@c.d",
            "a@.com",
        ] {
            assert!(Email::parse("email", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn slugs() {
        assert_eq!(slugify("Acme Security, Inc."), "acme-security-inc");
        assert!(validate_slug("acme-1").is_ok());
        assert!(validate_slug("Acme").is_err());
        assert!(validate_slug("-a").is_err());
        assert!(slugify("!").starts_with("org-"));
    }
}
