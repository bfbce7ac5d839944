//! Serde helpers: whole numbers as JSON Schema's `integer` has them, so `14` and `14.0`
//! both read as 14 (and `14.5` is refused). The OpenAPI document types integers that
//! way, and a client that writes `14.0` means 14.

use serde::{Deserialize, Deserializer, de::Error as _};

fn whole(n: serde_json_number::Number) -> Option<u64> {
    match n {
        serde_json_number::Number::U(u) => Some(u),
        serde_json_number::Number::F(f)
            if f.fract() == 0.0 && (0.0..=u64::MAX as f64).contains(&f) =>
        {
            Some(f as u64)
        }
        _ => None,
    }
}

/// A serde-visible number: unsigned or floating.
mod serde_json_number {
    use serde::de::{Deserializer, Visitor};

    pub(super) enum Number {
        U(u64),
        F(f64),
        Negative,
    }

    impl<'de> serde::Deserialize<'de> for Number {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl Visitor<'_> for V {
                type Value = Number;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a whole number")
                }
                fn visit_u64<E>(self, v: u64) -> Result<Number, E> {
                    Ok(Number::U(v))
                }
                fn visit_i64<E>(self, v: i64) -> Result<Number, E> {
                    Ok(u64::try_from(v).map_or(Number::Negative, Number::U))
                }
                fn visit_f64<E>(self, v: f64) -> Result<Number, E> {
                    Ok(Number::F(v))
                }
            }
            d.deserialize_any(V)
        }
    }
}

/// An optional whole number (`null` or absent: `None`).
pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<serde_json_number::Number>::deserialize(d)? {
        None => Ok(None),
        Some(n) => whole(n)
            .map(Some)
            .ok_or_else(|| D::Error::custom("expected a whole number ≥ 0")),
    }
}

/// A whole number from 0 to 65535.
pub fn u16<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    let n = serde_json_number::Number::deserialize(d)?;
    whole(n)
        .and_then(|u| u16::try_from(u).ok())
        .ok_or_else(|| D::Error::custom("expected a whole number from 0 to 65535"))
}

/// A whole number from 0 to 4294967295.
pub fn u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = serde_json_number::Number::deserialize(d)?;
    whole(n)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| D::Error::custom("expected a whole number from 0 to 4294967295"))
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize)]
    struct T {
        #[serde(default, deserialize_with = "super::opt_u64")]
        n: Option<u64>,
    }

    #[test]
    fn whole_floats_are_integers() {
        let read = |s: &str| serde_json::from_str::<T>(s).map(|t| t.n);
        assert_eq!(read(r#"{"n": 14}"#).unwrap(), Some(14));
        assert_eq!(read(r#"{"n": 14.0}"#).unwrap(), Some(14));
        assert_eq!(read(r#"{"n": null}"#).unwrap(), None);
        assert_eq!(read(r#"{}"#).unwrap(), None);
        assert!(read(r#"{"n": 14.5}"#).is_err());
        assert!(read(r#"{"n": -1}"#).is_err());
        assert!(read(r#"{"n": "14"}"#).is_err());
    }
}
