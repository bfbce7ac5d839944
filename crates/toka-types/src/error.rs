use thiserror::Error;

/// Why a value from outside was refused before it reached the kernel.
///
/// Each variant names the field and, for sizes, the size and the limit, so the caller
/// can fix the input without reading our code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// A field is larger than its limit.
    #[error("{field} is {actual} bytes, limit {limit}")]
    TooLarge {
        /// Which field.
        field: &'static str,
        /// Its size in bytes.
        actual: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// A text field is longer than its limit, in characters (Unicode scalar values,
    /// as JSON Schema's `maxLength` counts them).
    #[error("{field} is {actual} characters, limit {limit}")]
    TooLong {
        /// Which field.
        field: &'static str,
        /// Its length in characters.
        actual: usize,
        /// The limit.
        limit: usize,
    },
    /// A field that must say something is empty.
    #[error("{field} must not be empty")]
    Empty {
        /// Which field.
        field: &'static str,
    },
    /// A list holds more entries than its limit.
    #[error("{field} has {actual} entries, limit {limit}")]
    TooMany {
        /// Which field.
        field: &'static str,
        /// How many it has.
        actual: usize,
        /// The limit.
        limit: usize,
    },
    /// A number is outside its allowed range.
    #[error("{field} is {actual}, must be {min} to {max}")]
    OutOfRange {
        /// Which field.
        field: &'static str,
        /// The value.
        actual: u64,
        /// The smallest allowed.
        min: u64,
        /// The largest allowed.
        max: u64,
    },
    /// A field holds a character it may not (e.g. a control character in a name).
    #[error("{field} contains a forbidden character ({reason})")]
    BadCharacter {
        /// Which field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// A non-empty text of at most `limit` characters.
pub(crate) fn check_text(
    field: &'static str,
    value: &str,
    limit: usize,
) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Err(ValidationError::Empty { field });
    }
    check_chars(field, value, limit)
}

/// A text of at most `limit` characters (possibly empty). Cheap for short texts: the
/// byte length bounds the character count from above.
pub(crate) fn check_chars(
    field: &'static str,
    value: &str,
    limit: usize,
) -> Result<(), ValidationError> {
    if value.len() > limit {
        let actual = value.chars().count();
        if actual > limit {
            return Err(ValidationError::TooLong {
                field,
                actual,
                limit,
            });
        }
    }
    Ok(())
}

pub(crate) fn check_bytes(
    field: &'static str,
    len: usize,
    limit: usize,
) -> Result<(), ValidationError> {
    if len > limit {
        return Err(ValidationError::TooLarge {
            field,
            actual: len,
            limit,
        });
    }
    Ok(())
}
