//! Placeholder templates used by the purge rules (`ENVIRONMENTS`, docs/CONTRACT.md "Rule format").
//!
//! This module owns the template syntax and nothing else: parsing a template
//! such as `"{environment}:{locale}:entry:{uid}"` into literal text and
//! [`Placeholder`]s, and expanding it against a value lookup. It knows nothing
//! about items, environments or purge kinds; the planner (`crate::plan`)
//! supplies the values and validates the expanded strings.
//!
//! Syntax: literal text with `{name}` placeholders. There is no escape for
//! braces: a `{` must open a known placeholder and a `}` must close one.
//!
//! Expansion rules:
//! - a placeholder whose value is absent **or empty** is missing; expansion
//!   fails with the first missing placeholder and never produces a string with
//!   a hole in it;
//! - when the value of `{base_url}` ends with `/` and the text that follows it
//!   (the next literal or placeholder value) starts with `/`, one of the two
//!   slashes is dropped (`https://a.com/` + `/x` → `https://a.com/x`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A value that can be substituted into a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Placeholder {
    /// `{environment}`: the environment name.
    Environment,
    /// `{environment_uid}`: the environment uid.
    EnvironmentUid,
    /// `{locale}`: the item's publish locale.
    Locale,
    /// `{content_type}`: the entry's content type uid (entries only).
    ContentType,
    /// `{uid}`: the item uid.
    Uid,
    /// `{type}`: `entry` or `asset`.
    Type,
    /// `{version}`: the item version, in decimal.
    Version,
    /// `{api_key}`: the stack API key.
    ApiKey,
    /// `{branch}`: the stack branch.
    Branch,
    /// `{url}`: the item's URL (entry `url` field, asset `url`).
    Url,
    /// `{base_url}`: the environment's base URL for the item's locale.
    BaseUrl,
}

impl Placeholder {
    /// Every placeholder, in declaration order.
    pub const ALL: [Placeholder; 11] = [
        Placeholder::Environment,
        Placeholder::EnvironmentUid,
        Placeholder::Locale,
        Placeholder::ContentType,
        Placeholder::Uid,
        Placeholder::Type,
        Placeholder::Version,
        Placeholder::ApiKey,
        Placeholder::Branch,
        Placeholder::Url,
        Placeholder::BaseUrl,
    ];

    /// The name without braces, e.g. `"base_url"`.
    pub fn name(self) -> &'static str {
        match self {
            Placeholder::Environment => "environment",
            Placeholder::EnvironmentUid => "environment_uid",
            Placeholder::Locale => "locale",
            Placeholder::ContentType => "content_type",
            Placeholder::Uid => "uid",
            Placeholder::Type => "type",
            Placeholder::Version => "version",
            Placeholder::ApiKey => "api_key",
            Placeholder::Branch => "branch",
            Placeholder::Url => "url",
            Placeholder::BaseUrl => "base_url",
        }
    }

    /// Looks a placeholder up by its name without braces.
    pub fn from_name(name: &str) -> Option<Placeholder> {
        Placeholder::ALL.into_iter().find(|p| p.name() == name)
    }

    /// True for placeholders whose value depends only on the job and the
    /// environment, not on an item (usable in `on_failure`).
    pub fn is_environment_level(self) -> bool {
        matches!(
            self,
            Placeholder::Environment
                | Placeholder::EnvironmentUid
                | Placeholder::ApiKey
                | Placeholder::Branch
        )
    }
}

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}}}", self.name())
    }
}

/// Why a template could not be parsed. Every message names the template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template is the empty string.
    #[error("empty template")]
    Empty,
    /// `{name}` where `name` is not a known placeholder.
    #[error("template {template:?}: unknown placeholder \"{{{name}}}\" (known: {known})", known = known_list())]
    UnknownPlaceholder { template: String, name: String },
    /// A `{` with no matching `}`.
    #[error("template {template:?}: unclosed '{{' at byte {at}")]
    Unclosed { template: String, at: usize },
    /// A `}` that closes nothing.
    #[error("template {template:?}: stray '}}' at byte {at}")]
    StrayClose { template: String, at: usize },
}

fn known_list() -> String {
    Placeholder::ALL
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Value(Placeholder),
}

/// A parsed template. Compares, hashes and serializes as its original text.
#[derive(Debug, Clone)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

impl PartialEq for Template {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Template {}

impl Template {
    /// Parses `text`. Fails on the empty string, an unknown placeholder, an
    /// unclosed `{` or a stray `}`.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        if text.is_empty() {
            return Err(TemplateError::Empty);
        }
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        let mut offset = 0usize;
        while let Some(pos) = rest.find(['{', '}']) {
            let at = offset + pos;
            if rest.as_bytes()[pos] == b'}' {
                return Err(TemplateError::StrayClose {
                    template: text.to_owned(),
                    at,
                });
            }
            literal.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            let close = match after.find(['{', '}']) {
                Some(i) if after.as_bytes()[i] == b'}' => i,
                _ => {
                    return Err(TemplateError::Unclosed {
                        template: text.to_owned(),
                        at,
                    })
                }
            };
            let name = &after[..close];
            let placeholder =
                Placeholder::from_name(name).ok_or_else(|| TemplateError::UnknownPlaceholder {
                    template: text.to_owned(),
                    name: name.to_owned(),
                })?;
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal)));
            }
            parts.push(Part::Value(placeholder));
            let consumed = pos + 1 + close + 1;
            rest = &rest[consumed..];
            offset += consumed;
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template {
            source: text.to_owned(),
            parts,
        })
    }

    /// The original text.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The placeholders used, in order of first appearance, without repeats.
    pub fn placeholders(&self) -> Vec<Placeholder> {
        let mut out = Vec::new();
        for part in &self.parts {
            if let Part::Value(p) = part {
                if !out.contains(p) {
                    out.push(*p);
                }
            }
        }
        out
    }

    /// Whether two different items of one job and environment can expand it to the same value
    /// (a tag per content type, a URL without the item's own parts): such values are purged
    /// once per pass, after every page, instead of with each page that carries them
    /// (docs/ARCHITECTURE.md, "Purge groups"). An item is one uid in one locale; `{url}` is the
    /// item's own, and `{base_url}` names the locale (each locale has its base URL). A value
    /// taken for its item's own that does recur only costs a call: each group still purges after
    /// its KV work.
    pub fn may_recur(&self) -> bool {
        let locale = self.uses(Placeholder::Locale) || self.uses(Placeholder::BaseUrl);
        let own = (self.uses(Placeholder::Uid) && locale) || self.uses(Placeholder::Url);
        !own
    }

    /// True when the template uses `placeholder`.
    pub fn uses(&self, placeholder: Placeholder) -> bool {
        self.parts
            .iter()
            .any(|part| matches!(part, Part::Value(p) if *p == placeholder))
    }

    /// The literal (non-placeholder) pieces of the template, in order.
    pub fn literals(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|part| match part {
            Part::Literal(s) => Some(s.as_str()),
            Part::Value(_) => None,
        })
    }

    /// True when the template text begins with a literal that starts with `prefix`.
    #[cfg(test)]
    pub fn starts_with_literal(&self, prefix: &str) -> bool {
        matches!(self.parts.first(), Some(Part::Literal(s)) if s.starts_with(prefix))
    }

    /// True when the template begins with a placeholder.
    pub fn starts_with_placeholder(&self) -> bool {
        matches!(self.parts.first(), Some(Part::Value(_)))
    }

    /// Expands the template. `lookup` gives each placeholder's value; `None`
    /// or `Some("")` is missing, and the first missing placeholder (in template
    /// order) is returned as the error. Applies the `{base_url}` slash rule.
    pub fn expand<'a>(
        &self,
        lookup: impl Fn(Placeholder) -> Option<&'a str>,
    ) -> Result<String, Placeholder> {
        let mut out = String::with_capacity(self.source.len() + 32);
        let mut after_base_url_slash = false;
        for part in &self.parts {
            let piece: &str = match part {
                Part::Literal(s) => s,
                Part::Value(p) => match lookup(*p) {
                    Some(v) if !v.is_empty() => v,
                    _ => return Err(*p),
                },
            };
            let piece = if after_base_url_slash {
                piece.strip_prefix('/').unwrap_or(piece)
            } else {
                piece
            };
            out.push_str(piece);
            after_base_url_slash =
                matches!(part, Part::Value(Placeholder::BaseUrl)) && piece.ends_with('/');
        }
        Ok(out)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl std::str::FromStr for Template {
    type Err = TemplateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Template::parse(s)
    }
}

impl Serialize for Template {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Template::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn values(p: Placeholder) -> Option<&'static str> {
        match p {
            Placeholder::Environment => Some("production"),
            Placeholder::EnvironmentUid => Some("blt_env"),
            Placeholder::Locale => Some("en-us"),
            Placeholder::ContentType => Some("page"),
            Placeholder::Uid => Some("blt123"),
            Placeholder::Type => Some("entry"),
            Placeholder::Version => Some("7"),
            Placeholder::ApiKey => Some("blt_key"),
            Placeholder::Branch => Some("main"),
            Placeholder::Url => Some("/blog/hello"),
            Placeholder::BaseUrl => Some("https://www.example.com/"),
        }
    }

    #[test]
    fn names_round_trip() {
        for p in Placeholder::ALL {
            assert_eq!(Placeholder::from_name(p.name()), Some(p));
            assert_eq!(p.to_string(), format!("{{{}}}", p.name()));
        }
        assert_eq!(Placeholder::BaseUrl.name(), "base_url");
        assert_eq!(Placeholder::from_name("nope"), None);
    }

    #[test]
    fn parses_and_expands_every_placeholder() {
        let t = Template::parse(
            "{environment}|{environment_uid}|{locale}|{content_type}|{uid}|{type}|{version}|{api_key}|{branch}|{url}|{base_url}",
        )
        .unwrap();
        assert_eq!(t.placeholders(), Placeholder::ALL.to_vec());
        assert_eq!(
            t.expand(values).unwrap(),
            "production|blt_env|en-us|page|blt123|entry|7|blt_key|main|/blog/hello|https://www.example.com/"
        );
    }

    #[test]
    fn placeholders_are_deduplicated_in_order() {
        let t = Template::parse("{uid}-{locale}-{uid}").unwrap();
        assert_eq!(
            t.placeholders(),
            vec![Placeholder::Uid, Placeholder::Locale]
        );
        assert!(t.uses(Placeholder::Locale));
        assert!(!t.uses(Placeholder::Url));
    }

    #[test]
    fn unknown_placeholder_is_named() {
        let err = Template::parse("cs-{enviroment}").unwrap_err();
        assert_eq!(
            err,
            TemplateError::UnknownPlaceholder {
                template: "cs-{enviroment}".into(),
                name: "enviroment".into()
            }
        );
        let msg = err.to_string();
        assert!(msg.contains("\"cs-{enviroment}\""), "{msg}");
        assert!(
            msg.contains("unknown placeholder \"{enviroment}\""),
            "{msg}"
        );
        assert!(msg.contains("{environment}"), "{msg}");
    }

    #[test]
    fn empty_braces_are_an_unknown_placeholder() {
        assert!(matches!(
            Template::parse("a{}b"),
            Err(TemplateError::UnknownPlaceholder { name, .. }) if name.is_empty()
        ));
    }

    #[test]
    fn unclosed_brace_is_an_error() {
        let err = Template::parse("cs-{uid").unwrap_err();
        assert_eq!(
            err,
            TemplateError::Unclosed {
                template: "cs-{uid".into(),
                at: 3
            }
        );
        assert!(err.to_string().contains("unclosed '{'"), "{err}");
        assert!(err.to_string().contains("\"cs-{uid\""), "{err}");
        // A second `{` before the `}` also leaves the first one unclosed.
        assert!(matches!(
            Template::parse("{uid{locale}"),
            Err(TemplateError::Unclosed { at: 0, .. })
        ));
    }

    #[test]
    fn stray_close_is_an_error() {
        let err = Template::parse("{uid}}").unwrap_err();
        assert_eq!(
            err,
            TemplateError::StrayClose {
                template: "{uid}}".into(),
                at: 5
            }
        );
        assert!(err.to_string().contains("stray '}'"), "{err}");
    }

    #[test]
    fn empty_template_is_an_error() {
        assert_eq!(Template::parse(""), Err(TemplateError::Empty));
        assert_eq!(TemplateError::Empty.to_string(), "empty template");
    }

    #[test]
    fn missing_or_empty_value_is_reported_first_in_order() {
        let t = Template::parse("{base_url}{url}?{locale}").unwrap();
        let none_url = |p| match p {
            Placeholder::Url => None,
            Placeholder::Locale => Some(""),
            other => values(other),
        };
        assert_eq!(t.expand(none_url), Err(Placeholder::Url));
        let empty_base = |p| match p {
            Placeholder::BaseUrl => Some(""),
            other => values(other),
        };
        assert_eq!(t.expand(empty_base), Err(Placeholder::BaseUrl));
    }

    #[test]
    fn base_url_slash_rule() {
        let t = Template::parse("{base_url}{url}").unwrap();
        let with = |base: &'static str, url: &'static str| {
            t.expand(move |p| match p {
                Placeholder::BaseUrl => Some(base),
                Placeholder::Url => Some(url),
                _ => None,
            })
            .unwrap()
        };
        assert_eq!(with("https://a.com/", "/x"), "https://a.com/x");
        assert_eq!(with("https://a.com", "/x"), "https://a.com/x");
        assert_eq!(with("https://a.com/", "x"), "https://a.com/x");
        assert_eq!(with("https://a.com", "x"), "https://a.comx");
        // Only one slash is dropped.
        assert_eq!(with("https://a.com/", "//x"), "https://a.com//x");

        // The rule applies to a following literal as well.
        let lit = Template::parse("{base_url}/sitemap.xml").unwrap();
        let out = lit
            .expand(|p| (p == Placeholder::BaseUrl).then_some("https://a.com/"))
            .unwrap();
        assert_eq!(out, "https://a.com/sitemap.xml");

        // It does not apply to other placeholders ending with a slash.
        let other = Template::parse("{url}{url}").unwrap();
        let out = other
            .expand(|p| (p == Placeholder::Url).then_some("/a/"))
            .unwrap();
        assert_eq!(out, "/a//a/");
    }

    #[test]
    fn serializes_as_original_text_and_deserializes_by_parsing() {
        let t = Template::parse("cs-{uid}").unwrap();
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"cs-{uid}\"");
        let back: Template = serde_json::from_str("\"cs-{uid}\"").unwrap();
        assert_eq!(back, t);
        assert_eq!(back.as_str(), "cs-{uid}");
        assert!(serde_json::from_str::<Template>("\"cs-{nope}\"").is_err());
    }

    #[test]
    fn literal_helpers() {
        let t = Template::parse("https://x/{uid}/y").unwrap();
        assert!(t.starts_with_literal("https://"));
        assert!(!t.starts_with_placeholder());
        assert_eq!(t.literals().collect::<Vec<_>>(), vec!["https://x/", "/y"]);
        assert!(Template::parse("{url}").unwrap().starts_with_placeholder());
    }

    #[test]
    fn environment_level_placeholders() {
        let env_level: Vec<_> = Placeholder::ALL
            .into_iter()
            .filter(|p| p.is_environment_level())
            .collect();
        assert_eq!(
            env_level,
            vec![
                Placeholder::Environment,
                Placeholder::EnvironmentUid,
                Placeholder::ApiKey,
                Placeholder::Branch
            ]
        );
    }

    proptest! {
        #[test]
        fn parse_and_expand_never_panic(text in "[a-z{}_/:]{0,40}", value in "[a-z/]{0,5}") {
            if let Ok(t) = Template::parse(&text) {
                let _ = t.expand(|_| Some(value.as_str()));
            }
        }

        #[test]
        fn text_without_placeholders_expands_to_itself(text in "[^{}]{1,60}") {
            let t = Template::parse(&text).unwrap();
            prop_assert!(t.placeholders().is_empty());
            prop_assert_eq!(t.expand(|_| None).unwrap(), text);
        }

        #[test]
        fn expansion_never_yields_an_empty_value(
            picks in proptest::collection::vec(0usize..11, 1..6),
            vals in proptest::collection::vec(proptest::option::of("[a-z/]{0,3}"), 11),
        ) {
            let text: String = picks.iter().map(|&i| format!("{}-", Placeholder::ALL[i])).collect();
            let t = Template::parse(&text).unwrap();
            let value_of = |p: Placeholder| {
                let i = Placeholder::ALL.iter().position(|q| *q == p).unwrap();
                vals[i].as_deref()
            };
            let first_missing = picks
                .iter()
                .map(|&i| Placeholder::ALL[i])
                .find(|&p| value_of(p).is_none_or(str::is_empty));
            match t.expand(value_of) {
                Ok(out) => {
                    prop_assert!(first_missing.is_none());
                    // Values never contain '-', so "--" would mean an empty value.
                    prop_assert!(!out.starts_with('-') && !out.contains("--"));
                }
                Err(p) => prop_assert_eq!(Some(p), first_missing),
            }
        }
    }

    #[test]
    fn a_template_recurs_unless_it_names_the_item() {
        let recurs = |s: &str| Template::parse(s).unwrap().may_recur();
        assert!(recurs("cs-{uid}"), "one uid in two locales");
        assert!(recurs("cs-ct-{content_type}"));
        assert!(recurs("https://www.example.com/e/{uid}"));
        assert!(!recurs("cs-{uid}-{locale}"));
        assert!(!recurs("{base_url}{url}"), "an item's own URL");
        assert!(!recurs("{url}"));
        assert!(!recurs("{base_url}e/{uid}"), "each locale has its base URL");
    }
}
