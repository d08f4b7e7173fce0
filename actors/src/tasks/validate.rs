//! Field checks of the `tasks` service. Bad fields are collected in a
//! [`Fields`](crate::common::validate::Fields) so one answer lists them all.

/// Longest task name, in characters.
pub const NAME_MAX: usize = 200;
/// Largest payload, in bytes of JSON text.
pub const PAYLOAD_MAX: usize = 16 * 1024;
/// Most steps.
pub const STEPS_MAX: i64 = 10_000;
/// Steps when none are given.
pub const STEPS_DEFAULT: i64 = 10;
/// Longest pause before a step, ms.
pub const DELAY_MAX_MS: i64 = 3_600_000;
/// Pause before a step when none is given, ms.
pub const DELAY_DEFAULT_MS: i64 = 100;

/// Required; 1 to 200 characters, not only spaces, no control characters.
pub fn name(s: Option<&str>) -> Result<(), String> {
    let Some(s) = s else {
        return Err("is required".into());
    };
    if s.trim().is_empty() || s.chars().count() > NAME_MAX || s.chars().any(char::is_control) {
        return Err(format!(
            "must be 1 to {NAME_MAX} characters, not blank, without control characters"
        ));
    }
    Ok(())
}

/// JSON text of at most 16 KiB (empty means `null`).
pub fn payload(s: &str) -> Result<(), String> {
    if s.len() > PAYLOAD_MAX {
        return Err(format!("must be at most {PAYLOAD_MAX} bytes of JSON"));
    }
    if !s.is_empty() && serde_json::from_str::<serde_json::Value>(s).is_err() {
        return Err("must be JSON".into());
    }
    Ok(())
}

/// 1 to 10,000.
pub fn steps(n: i64) -> Result<(), String> {
    if (1..=STEPS_MAX).contains(&n) {
        Ok(())
    } else {
        Err(format!("must be between 1 and {STEPS_MAX}"))
    }
}

/// 0 to 3,600,000 ms.
pub fn delay_ms(n: i64) -> Result<(), String> {
    if (0..=DELAY_MAX_MS).contains(&n) {
        Ok(())
    } else {
        Err(format!("must be between 0 and {DELAY_MAX_MS}"))
    }
}

/// A step of the task: 1 to `steps`.
pub fn fail_at_step(n: i64, steps: i64) -> Result<(), String> {
    if (1..=steps.max(1)).contains(&n) {
        Ok(())
    } else {
        Err(format!("must be between 1 and steps ({steps})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(name(Some("build report")).is_ok());
        assert!(name(Some(&"é".repeat(NAME_MAX))).is_ok());
        assert_eq!(name(None).unwrap_err(), "is required");
        for bad in ["", "   ", "tab\tname", &"x".repeat(NAME_MAX + 1)] {
            assert!(name(Some(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn numbers_and_payloads() {
        assert!(steps(1).is_ok() && steps(STEPS_MAX).is_ok());
        assert!(steps(0).is_err() && steps(-3).is_err() && steps(STEPS_MAX + 1).is_err());
        assert!(delay_ms(0).is_ok() && delay_ms(DELAY_MAX_MS).is_ok());
        assert!(delay_ms(-1).is_err() && delay_ms(DELAY_MAX_MS + 1).is_err());
        assert!(fail_at_step(3, 3).is_ok());
        assert!(fail_at_step(0, 3).is_err() && fail_at_step(4, 3).is_err());
        assert!(payload("").is_ok() && payload(r#"{"a": [1, 2]}"#).is_ok());
        assert!(payload("{not json").is_err());
        assert!(payload(&format!("\"{}\"", "x".repeat(PAYLOAD_MAX))).is_err());
    }
}
