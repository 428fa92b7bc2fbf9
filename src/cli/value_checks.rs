//! The checks every resolved flag value goes through: each refusal names the flag and what was
//! expected (exit 2).

use crate::{Error, Result};

/// A finite number above 0.
pub(super) fn positive_f64(flag: &str, v: f64) -> Result<f64> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(Error::usage(format!(
            "--{flag} {v}: expected a positive number"
        )))
    }
}

/// An integer above 0.
pub(super) fn positive<T: PartialOrd + Default + std::fmt::Display + Copy>(
    flag: &str,
    v: T,
) -> Result<T> {
    if v > T::default() {
        Ok(v)
    } else {
        Err(Error::usage(format!(
            "--{flag} {v}: expected a positive integer"
        )))
    }
}

/// A value in (0, 1].
pub(super) fn fraction(flag: &str, v: f32) -> Result<f32> {
    if v.is_finite() && v > 0.0 && v <= 1.0 {
        Ok(v)
    } else {
        Err(Error::usage(format!(
            "--{flag} {v}: expected a value in (0, 1]"
        )))
    }
}
