//! Identifiers: key ids, namespaces, alias names, and the `{key}` reference that accepts either.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::error::Error;

/// A key's id: a UUID (v7, so ids sort by creation time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct KeyId(pub Uuid);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for KeyId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Uuid::parse_str(s).map(KeyId).map_err(|_| Error::invalid(format!("`{}` is not a key id", truncate(s))))
    }
}

/// A namespace name: lowercase letters, digits, `-`, `_` and `.`, 1 to 64 characters, starting
/// with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Namespace(String);

impl Namespace {
    /// Validates and wraps a namespace name.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(Error::invalid(format!(
                "namespace `{}` is invalid: use 1-64 lowercase letters, digits, `-`, `_` or `.`",
                truncate(s)
            )))
        }
    }

    /// The namespace of a key that does not exist: an empty name, which no real namespace
    /// (nor its group) can have. Decisions about unknown keys are asked against it.
    pub(crate) fn nowhere() -> Self {
        Self(String::new())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An alias name, always written with its `alias/` prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AliasName(String);

impl AliasName {
    /// The prefix every alias carries.
    pub const PREFIX: &'static str = "alias/";

    /// Validates an alias: `alias/` then 1 to 250 of `A-Z a-z 0-9 / _ -`.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let rest = s.strip_prefix(Self::PREFIX).unwrap_or("");
        let ok = !rest.is_empty()
            && rest.len() <= 250
            && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_-".contains(&b));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(Error::invalid(format!(
                "alias `{}` is invalid: write `alias/NAME` with 1-250 of A-Z a-z 0-9 / _ -",
                truncate(s)
            ))
            .with_detail(crate::error::Detail::InvalidAliasName))
        }
    }

    /// The full name, `alias/...`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AliasName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a request names a key: by id or by alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    /// A key id.
    Id(KeyId),
    /// An alias that points to a key.
    Alias(AliasName),
}

impl FromStr for KeyRef {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        if s.starts_with(AliasName::PREFIX) {
            AliasName::parse(s).map(KeyRef::Alias)
        } else {
            s.parse().map(KeyRef::Id)
        }
    }
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => id.fmt(f),
            Self::Alias(a) => a.fmt(f),
        }
    }
}

/// Shortens user input echoed in an error message.
pub(crate) fn truncate(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_rules() {
        assert!(Namespace::parse("payments").is_ok());
        assert!(Namespace::parse("team-a.prod_1").is_ok());
        assert!(Namespace::parse("").is_err());
        assert!(Namespace::parse("Payments").is_err());
        assert!(Namespace::parse("-x").is_err());
        assert!(Namespace::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn key_ref_parses_ids_and_aliases() {
        let id = uuid::Uuid::new_v4();
        assert_eq!(id.to_string().parse::<KeyRef>().ok(), Some(KeyRef::Id(KeyId(id))));
        assert!(matches!("alias/payments-db".parse::<KeyRef>(), Ok(KeyRef::Alias(_))));
        assert!("alias/".parse::<KeyRef>().is_err());
        assert!("alias/has space".parse::<KeyRef>().is_err());
        assert!("not-a-uuid".parse::<KeyRef>().is_err());
    }
}
