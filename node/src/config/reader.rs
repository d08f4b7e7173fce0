//! The generic reader: typed settings ([`Setting`]), validation rules ([`Check`] and the
//! rules shared by several sections), TOML tables being read ([`Section`]) and the
//! [`Reader`] that walks them, applies `TROUPE_*` overrides and collects every error.
//!
//! A section's own reader is an `impl Reader` block in that section's file, next to its
//! type; rules only one section uses live there too.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use toml::{Table, Value};

use super::ConfigError;

/// A value type that can be read from TOML and from text (env vars, flags).
pub(super) trait Setting: Sized {
    /// Converts a TOML value; the default expects a string and delegates to
    /// [`Setting::from_text`].
    fn from_toml(value: &Value) -> Result<Self, String> {
        match value {
            Value::String(text) => Self::from_text(text),
            other => Err(mismatch("a string", other)),
        }
    }

    /// Converts the text of an environment variable or flag.
    fn from_text(text: &str) -> Result<Self, String>;
}

impl Setting for String {
    fn from_text(text: &str) -> Result<Self, String> {
        Ok(text.to_owned())
    }
}

impl Setting for PathBuf {
    fn from_text(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("must not be empty".to_owned());
        }
        Ok(PathBuf::from(text))
    }
}

impl Setting for SocketAddr {
    fn from_text(text: &str) -> Result<Self, String> {
        text.trim()
            .parse()
            .map_err(|_| format!("expected an IP:port address, got {text:?}"))
    }
}

impl Setting for u64 {
    fn from_toml(value: &Value) -> Result<Self, String> {
        match value {
            Value::Integer(i) => {
                u64::try_from(*i).map_err(|_| format!("must not be negative, got {i}"))
            }
            other => Err(mismatch("an integer", other)),
        }
    }

    fn from_text(text: &str) -> Result<Self, String> {
        text.trim()
            .parse()
            .map_err(|_| format!("expected a non-negative integer, got {text:?}"))
    }
}

/// Narrower unsigned integers, read as `u64` and range-checked.
macro_rules! narrow_setting {
    ($($ty:ty),*) => {$(
        impl Setting for $ty {
            fn from_toml(value: &Value) -> Result<Self, String> {
                u64::from_toml(value).and_then(narrow)
            }

            fn from_text(text: &str) -> Result<Self, String> {
                u64::from_text(text).and_then(narrow)
            }
        }
    )*};
}

narrow_setting!(usize, u32);

/// Converts `value` to a narrower integer type, or says it is too large.
fn narrow<T: TryFrom<u64>>(value: u64) -> Result<T, String> {
    T::try_from(value).map_err(|_| format!("{value} is too large"))
}

impl Setting for f64 {
    fn from_toml(value: &Value) -> Result<Self, String> {
        let number = match value {
            Value::Float(f) => *f,
            // Whole numbers such as `phi_threshold = 8` are fine too.
            Value::Integer(i) => *i as f64,
            other => return Err(mismatch("a number", other)),
        };
        finite(number)
    }

    fn from_text(text: &str) -> Result<Self, String> {
        match text.trim().parse() {
            Ok(number) => finite(number),
            Err(_) => Err(format!("expected a number, got {text:?}")),
        }
    }
}

/// Rejects NaN and infinities.
fn finite(number: f64) -> Result<f64, String> {
    if number.is_finite() {
        Ok(number)
    } else {
        Err(format!("expected a finite number, got {number}"))
    }
}

impl Setting for bool {
    fn from_toml(value: &Value) -> Result<Self, String> {
        match value {
            Value::Boolean(b) => Ok(*b),
            other => Err(mismatch("a boolean", other)),
        }
    }

    fn from_text(text: &str) -> Result<Self, String> {
        match text.trim() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(format!("expected true or false, got {text:?}")),
        }
    }
}

/// "expected `expected`, got a string"-style message.
pub(super) fn mismatch(expected: &str, got: &Value) -> String {
    let got = match got {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a datetime",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    };
    format!("expected {expected}, got {got}")
}

/// A validation rule applied to every value given for a setting.
pub(super) type Check<'c, T> = &'c dyn Fn(&T) -> Result<(), String>;

/// Accepts anything.
pub(super) fn any<T>(_: &T) -> Result<(), String> {
    Ok(())
}

/// Requires `value >= min`.
pub(super) fn at_least<T: PartialOrd + fmt::Display>(min: T) -> impl Fn(&T) -> Result<(), String> {
    move |value| {
        if *value >= min {
            Ok(())
        } else {
            Err(format!("must be at least {min}, got {value}"))
        }
    }
}

/// Requires `min <= value <= max`.
pub(super) fn between<T: PartialOrd + fmt::Display>(
    min: T,
    max: T,
) -> impl Fn(&T) -> Result<(), String> {
    move |value| {
        if *value >= min && *value <= max {
            Ok(())
        } else {
            Err(format!("must be between {min} and {max}, got {value}"))
        }
    }
}

/// Requires one of `allowed`.
pub(super) fn one_of(allowed: &'static [&'static str]) -> impl Fn(&String) -> Result<(), String> {
    move |value| {
        if allowed.contains(&value.as_str()) {
            Ok(())
        } else {
            let names: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
            Err(format!(
                "expected one of {}, got {value:?}",
                names.join(", ")
            ))
        }
    }
}

/// Requires a string of at least `min` characters (the value is not echoed:
/// it may be a secret).
pub(super) fn min_chars(min: usize) -> impl Fn(&String) -> Result<(), String> {
    move |value| {
        let len = value.chars().count();
        if len >= min {
            Ok(())
        } else {
            Err(format!("must be at least {min} characters, got {len}"))
        }
    }
}

/// Requires a 1-64 character name of `[A-Za-z0-9_-]` (plus `extra`).
pub(super) fn name_chars(extra: &'static str) -> impl Fn(&String) -> Result<(), String> {
    move |value| {
        let ok = (1..=64).contains(&value.len())
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || extra.contains(c));
        if ok {
            Ok(())
        } else {
            Err(format!(
                "must be 1-64 characters of A-Z, a-z, 0-9, '_', '-'{extra}, got {value:?}"
            ))
        }
    }
}

/// Requires a positive number.
pub(super) fn positive(value: &f64) -> Result<(), String> {
    if *value > 0.0 {
        Ok(())
    } else {
        Err(format!("must be greater than 0, got {value}"))
    }
}

/// `<section>.<key>`.
pub(super) fn section_key(section: &str, key: &str) -> String {
    format!("{section}.{key}")
}

/// Requires something shaped like an email address.
#[allow(clippy::ptr_arg)] // the shape of a `Check<String>`
pub(super) fn email_like(value: &String) -> Result<(), String> {
    match value.split_once('@') {
        Some((local, domain)) if !local.is_empty() && domain.contains('.') => Ok(()),
        _ => Err(format!("expected an email address, got {value:?}")),
    }
}

/// A TOML table being read; remembers the keys asked for so the rest can
/// be reported as unknown.
pub(super) struct Section<'t> {
    path: String,
    table: Option<&'t Table>,
    used: HashSet<String>,
}

impl<'t> Section<'t> {
    pub(super) fn new(path: String, table: Option<&'t Table>) -> Self {
        Section {
            path,
            table,
            used: HashSet::new(),
        }
    }

    /// Full key path of `key` in this section.
    pub(super) fn key(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub(super) fn has(&self, key: &str) -> bool {
        self.table.is_some_and(|table| table.contains_key(key))
    }

    /// The value of `key`, marking it known.
    pub(super) fn take(&mut self, key: &str) -> Option<&'t Value> {
        self.used.insert(key.to_owned());
        self.table?.get(key)
    }

    /// The keys nobody asked for yet, with their values (for sections whose sub-tables are
    /// named by the user, like `[services.<name>]`).
    pub(super) fn unread(&self) -> Vec<(&'t str, &'t Value)> {
        let Some(table) = self.table else {
            return Vec::new();
        };
        table
            .iter()
            .filter(|(key, _)| !self.used.contains(*key))
            .map(|(key, value)| (key.as_str(), value))
            .collect()
    }
}

/// Collects errors while reading the layers of the configuration.
pub(super) struct Reader<'e> {
    pub(super) errors: Vec<ConfigError>,
    pub(super) env: &'e HashMap<String, String>,
}

impl<'e> Reader<'e> {
    pub(super) fn error(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError {
            key: key.into(),
            message: message.into(),
        });
    }

    pub(super) fn env(&self, name: &str) -> Option<&'e str> {
        self.env.get(name).map(String::as_str)
    }

    /// Keeps a parsed and checked value, or records why not.
    fn accept<T>(
        &mut self,
        key: &str,
        parsed: Result<T, String>,
        check: Check<'_, T>,
    ) -> Option<T> {
        match parsed.and_then(|value| check(&value).map(|()| value)) {
            Ok(value) => Some(value),
            Err(message) => {
                self.error(key, message);
                None
            }
        }
    }

    /// Parses the text of an env var or flag named `key`, if given.
    pub(super) fn text<T: Setting>(
        &mut self,
        key: &str,
        text: Option<&str>,
        check: Check<'_, T>,
    ) -> Option<T> {
        let text = text?;
        self.accept(key, T::from_text(text), check)
    }

    /// `key` of `section`, overridden by env var `env` when that is set.
    pub(super) fn get<T: Setting>(
        &mut self,
        section: &mut Section<'_>,
        key: &str,
        env: Option<&str>,
        check: Check<'_, T>,
    ) -> Option<T> {
        let file = section
            .take(key)
            .and_then(|value| self.accept(&section.key(key), T::from_toml(value), check));
        let env = env.and_then(|name| self.text(name, self.env(name), check));
        env.or(file)
    }

    /// Like [`Reader::get`], but `key` must be present.
    pub(super) fn required<T: Setting>(
        &mut self,
        section: &mut Section<'_>,
        key: &str,
        check: Check<'_, T>,
    ) -> Option<T> {
        if !section.has(key) {
            self.error(section.key(key), "missing");
        }
        self.get(section, key, None, check)
    }

    /// A list from TOML array `key` of `section`, overridden by the
    /// comma-separated env var `env`. `None` when neither is given or an
    /// item is bad.
    pub(super) fn list<T: Setting>(
        &mut self,
        section: &mut Section<'_>,
        key: &str,
        env: Option<&str>,
        check: Check<'_, T>,
    ) -> Option<Vec<T>> {
        let path = section.key(key);
        let file = match section.take(key) {
            None => None,
            Some(Value::Array(items)) => {
                let parsed: Vec<Option<T>> = (items.iter().enumerate())
                    .map(|(i, item)| {
                        self.accept(&format!("{path}[{i}]"), T::from_toml(item), check)
                    })
                    .collect();
                parsed.into_iter().collect()
            }
            Some(other) => {
                self.error(path, mismatch("an array", other));
                None
            }
        };
        let env = env.and_then(|name| self.text_list(name, self.env(name).into_iter(), check));
        env.or(file)
    }

    /// A list from comma-separated `texts` (env var or flag `key`); `None`
    /// when there are no texts or an item is bad.
    pub(super) fn text_list<'a, T: Setting>(
        &mut self,
        key: &str,
        mut texts: impl Iterator<Item = &'a str>,
        check: Check<'_, T>,
    ) -> Option<Vec<T>> {
        let first = texts.next()?;
        let parsed: Vec<Option<T>> = std::iter::once(first)
            .chain(texts)
            .flat_map(|text| text.split(','))
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| self.accept(key, T::from_text(item), check))
            .collect();
        parsed.into_iter().collect()
    }

    /// Sub-table `name` of `parent` (absent: an empty section).
    pub(super) fn section<'t>(&mut self, parent: &mut Section<'t>, name: &str) -> Section<'t> {
        let path = parent.key(name);
        match parent.take(name) {
            Some(Value::Table(table)) => Section::new(path, Some(table)),
            Some(other) => {
                self.error(path.clone(), mismatch("a table", other));
                Section::new(path, None)
            }
            None => Section::new(path, None),
        }
    }

    /// Reports the keys of `section` that nobody asked for.
    pub(super) fn finish(&mut self, section: Section<'_>) {
        let Some(table) = section.table else { return };
        for key in table.keys() {
            if !section.used.contains(key) {
                self.error(section.key(key), "unknown key");
            }
        }
    }
}
