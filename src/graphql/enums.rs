//! Stored enum-like columns as typed values: one macro keeps the database spelling, the
//! GraphQL enum and the parser in step.

/// Declares an enum whose variants are stored as lowercase snake_case strings (the spelling
/// REST uses too) and exposed in GraphQL as SCREAMING_CASE.
#[macro_export]
macro_rules! stored_enum {
    ($(#[$meta:meta])* $name:ident, $field:literal { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, async_graphql::Enum, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored (and REST) spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// # Errors
            /// `VALIDATION_FAILED` naming the field when `value` is not a known spelling.
            pub fn parse(value: &str) -> $crate::error::AppResult<Self> {
                match value {
                    $($text => Ok($name::$variant),)+
                    other => Err($crate::error::AppError::invalid(
                        $field,
                        format!(
                            "unknown value {other:?}; expected one of: {}",
                            [$($text),+].join(", ")
                        ),
                    )),
                }
            }
        }
    };
}
