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
    /// A field that must say something is empty (or only white space).
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

pub(crate) fn check_text(
    field: &'static str,
    value: &str,
    limit: usize,
) -> Result<(), ValidationError> {
    if value.len() > limit {
        return Err(ValidationError::TooLarge {
            field,
            actual: value.len(),
            limit,
        });
    }
    if value.trim().is_empty() {
        return Err(ValidationError::Empty { field });
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
