//! Field checks of the `todos` service. Bad fields are collected in a
//! [`Fields`](crate::common::validate::Fields) so one answer lists them all.

/// Longest title, in characters.
pub const TITLE_MAX: usize = 200;
/// Longest description, in characters.
pub const DESCRIPTION_MAX: usize = 2000;
/// The statuses a todo may have.
pub const STATUSES: [&str; 3] = ["pending", "in_progress", "done"];

/// 1 to 200 characters, not blank, no control characters.
pub fn title(s: &str) -> Result<(), String> {
    if s.trim().is_empty() || s.chars().count() > TITLE_MAX || s.chars().any(char::is_control) {
        return Err(format!(
            "must be 1 to {TITLE_MAX} characters, not blank, without control characters"
        ));
    }
    Ok(())
}

/// At most 2000 characters; line breaks and tabs are the only control characters allowed.
pub fn description(s: &str) -> Result<(), String> {
    let bad_control = s
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'));
    if s.chars().count() > DESCRIPTION_MAX || bad_control {
        return Err(format!(
            "must be at most {DESCRIPTION_MAX} characters without control characters other than line breaks and tabs"
        ));
    }
    Ok(())
}

/// One of [`STATUSES`].
pub fn status(s: &str) -> Result<(), String> {
    if STATUSES.contains(&s) {
        Ok(())
    } else {
        Err(format!("must be one of {}", STATUSES.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_descriptions_statuses() {
        assert!(title("buy milk").is_ok());
        assert!(title(&"é".repeat(TITLE_MAX)).is_ok());
        for bad in ["", "  ", "nul\0", &"x".repeat(TITLE_MAX + 1)] {
            assert!(title(bad).is_err(), "{bad:?}");
        }
        assert!(description("").is_ok());
        assert!(description("line one\nline two\ttabbed").is_ok());
        assert!(description("bell\u{7}").is_err());
        assert!(description(&"d".repeat(DESCRIPTION_MAX + 1)).is_err());
        for ok in STATUSES {
            assert!(status(ok).is_ok());
        }
        for bad in ["", "Done", "completed", "in progress"] {
            assert!(status(bad).is_err(), "{bad:?}");
        }
    }
}
