//! A rule's Cloudflare zones (docs/CONTRACT.md, "Several zones"): the one-zone form
//! (`zone_id`, which takes every host) or the list form (`zones`, each with the `hosts` it
//! serves), and the routing of a URL, prefix or host to the zone that serves its host. Pure.
//!
//! Choices where the contract is silent:
//! - The same `zone_id` listed twice is a configuration error (its hosts belong in one entry).
//! - Hosts are compared lower-case, without a trailing `.`; a URL's host loses its user info and
//!   port before routing (`https://www.example.com:8443/x` goes where `www.example.com` goes).
//! - Every problem of a rule's `zones` is reported at once, each with its path.

use serde::Serialize;
use serde_json::{Map, Value};

use super::{kind, opt_id, Path, RulesError};

/// One host a zone serves.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(into = "String")]
pub enum HostPattern {
    /// That host only.
    Exact(String),
    /// Any subdomain of the host (`*.example.de`), not the host itself.
    Subdomains(String),
}

impl From<HostPattern> for String {
    fn from(p: HostPattern) -> String {
        match p {
            HostPattern::Exact(h) => h,
            HostPattern::Subdomains(h) => format!("*.{h}"),
        }
    }
}

/// One zone of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Zone {
    pub zone_id: String,
    /// The hosts it serves; `None`: every host no other zone lists.
    pub hosts: Option<Vec<HostPattern>>,
}

/// A rule's zones, in configuration order (none: the rule purges nothing on Cloudflare).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Zones(Vec<Zone>);

impl Zones {
    /// The one-zone form: `zone_id` takes every host.
    pub fn single(zone_id: String) -> Zones {
        Zones(vec![Zone {
            zone_id,
            hosts: None,
        }])
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every zone id, in configuration order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|z| z.zone_id.as_str())
    }

    /// The zone id when there is exactly one zone.
    pub fn only(&self) -> Option<&str> {
        match self.0.as_slice() {
            [z] => Some(&z.zone_id),
            _ => None,
        }
    }

    /// The zone that serves `host`: the one listing it exactly, else the longest matching
    /// `*.` wildcard, else the zone without `hosts`; `None` when no zone takes it.
    pub fn route(&self, host: &str) -> Option<&str> {
        let host = normal_host(host);
        let host = host.as_str();
        let exact = self.0.iter().find(|z| {
            z.hosts
                .iter()
                .flatten()
                .any(|p| matches!(p, HostPattern::Exact(h) if h == host))
        });
        if let Some(z) = exact {
            return Some(&z.zone_id);
        }
        let wildcard = self
            .0
            .iter()
            .flat_map(|z| {
                z.hosts.iter().flatten().filter_map(move |p| match p {
                    HostPattern::Subdomains(d)
                        if host.len() > d.len() + 1
                            && host.ends_with(d.as_str())
                            && host.as_bytes()[host.len() - d.len() - 1] == b'.' =>
                    {
                        Some((d.len(), z))
                    }
                    _ => None,
                })
            })
            .max_by_key(|(len, _)| *len);
        if let Some((_, z)) = wildcard {
            return Some(&z.zone_id);
        }
        self.0
            .iter()
            .find(|z| z.hosts.is_none())
            .map(|z| z.zone_id.as_str())
    }

    /// The zone of an absolute URL (`https://host[:port]/…`).
    pub fn route_url(&self, url: &str) -> Option<&str> {
        self.route(&host_of_url(url)?)
    }

    /// The zone of a purge prefix (`host/path`).
    pub fn route_prefix(&self, prefix: &str) -> Option<&str> {
        let host = prefix.split('/').next().unwrap_or(prefix);
        self.route(host.split(':').next().unwrap_or(host))
    }
}

/// The host of an absolute URL, without user info or port.
pub fn host_of_url(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host = authority.rsplit('@').next().unwrap_or(authority);
    let host = host.split(':').next().unwrap_or(host);
    (!host.is_empty()).then(|| normal_host(host))
}

fn normal_host(h: &str) -> String {
    h.trim_end_matches('.').to_ascii_lowercase()
}

/// Reads a rule's `zone_id` or `zones`, reporting every problem at once.
pub(super) fn parse(path: &Path, map: &Map<String, Value>) -> Result<Zones, RulesError> {
    let zone_id = opt_id(path, map, "zone_id")?;
    let list = match map.get("zones") {
        None | Some(Value::Null) => return Ok(zone_id.map(Zones::single).unwrap_or_default()),
        Some(v) => v,
    };
    let zones_path = path.key("zones");
    if zone_id.is_some() {
        return Err(RulesError::at(
            &zones_path,
            "zone_id and zones together: use zone_id for one zone, or zones",
        ));
    }
    let items = list.as_array().ok_or_else(|| {
        RulesError::at(
            &zones_path,
            format!("expected a list of zones, got {}", kind(list)),
        )
    })?;
    if items.is_empty() {
        return Err(RulesError::at(
            &zones_path,
            "must list at least one zone (or leave it out)",
        ));
    }
    let mut errors = Vec::new();
    let mut zones = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match parse_zone(&zones_path.index(i), item, &mut errors) {
            Some(z) => zones.push(z),
            None => continue,
        }
    }
    check_across(&zones_path, &zones, &mut errors);
    match errors.len() {
        0 => Ok(Zones(zones)),
        1 => Err(errors.remove(0)),
        _ => Err(RulesError::Many(errors)),
    }
}

/// One `zones` entry; its problems go to `errors`.
fn parse_zone(path: &Path, item: &Value, errors: &mut Vec<RulesError>) -> Option<Zone> {
    let Some(map) = item.as_object() else {
        errors.push(RulesError::at(
            path,
            format!("expected a zone ({{zone_id, hosts}}), got {}", kind(item)),
        ));
        return None;
    };
    if let Err(e) = super::check_fields(path, map, &["zone_id", "hosts"]) {
        errors.push(e);
    }
    let zone_id = match opt_id(path, map, "zone_id") {
        Ok(Some(id)) => Some(id),
        Ok(None) => {
            errors.push(RulesError::at(&path.key("zone_id"), "is required"));
            None
        }
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let hosts = match map.get("hosts") {
        None | Some(Value::Null) => None,
        Some(Value::Array(list)) if list.is_empty() => {
            errors.push(RulesError::at(
                &path.key("hosts"),
                "must not be empty (leave hosts out for the zone that takes every other host)",
            ));
            Some(Vec::new())
        }
        Some(Value::Array(list)) => Some(
            list.iter()
                .enumerate()
                .filter_map(|(j, h)| match parse_host(h) {
                    Ok(p) => Some(p),
                    Err(why) => {
                        errors.push(RulesError::at(&path.key("hosts").index(j), why));
                        None
                    }
                })
                .collect(),
        ),
        Some(other) => {
            errors.push(RulesError::at(
                &path.key("hosts"),
                format!("expected a list of hosts, got {}", kind(other)),
            ));
            Some(Vec::new())
        }
    };
    Some(Zone {
        zone_id: zone_id?,
        hosts,
    })
}

/// One `hosts` entry: `host` or `*.host`, no scheme, path or port.
fn parse_host(v: &Value) -> Result<HostPattern, String> {
    let Some(s) = v.as_str() else {
        return Err(format!("expected a host, got {}", kind(v)));
    };
    let s = s.trim();
    if s.contains("://") {
        return Err("a host, not a URL (no scheme)".into());
    }
    if s.contains('/') {
        return Err("a host, without a path".into());
    }
    if s.contains(':') {
        return Err("a host, without a port".into());
    }
    let (wild, name) = match s.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let name = normal_host(name);
    let valid = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !valid {
        return Err(format!("not a host name: {s:?}"));
    }
    Ok(if wild {
        HostPattern::Subdomains(name)
    } else {
        HostPattern::Exact(name)
    })
}

/// Problems between zones: a host in two zones, a zone listed twice, more than one zone
/// without `hosts`.
fn check_across(path: &Path, zones: &[Zone], errors: &mut Vec<RulesError>) {
    let mut seen: Vec<(&HostPattern, usize)> = Vec::new();
    for (i, z) in zones.iter().enumerate() {
        if zones[..i].iter().any(|o| o.zone_id == z.zone_id) {
            errors.push(RulesError::at(
                &path.index(i).key("zone_id"),
                format!(
                    "zone {} is listed twice (list its hosts in one entry)",
                    z.zone_id
                ),
            ));
        }
        for (j, h) in z.hosts.iter().flatten().enumerate() {
            if let Some((_, first)) = seen.iter().find(|(p, _)| *p == h) {
                errors.push(RulesError::at(
                    &path.index(i).key("hosts").index(j),
                    format!(
                        "{} is already served by zones[{first}]",
                        String::from(h.clone())
                    ),
                ));
            } else {
                seen.push((h, i));
            }
        }
    }
    let catch_all: Vec<usize> = zones
        .iter()
        .enumerate()
        .filter(|(_, z)| z.hosts.is_none())
        .map(|(i, _)| i)
        .collect();
    if let [_, second, ..] = catch_all.as_slice() {
        errors.push(RulesError::at(
            &path.index(*second),
            "only one zone may leave hosts out (it takes every host no other zone lists)",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn zones(v: Value) -> Result<Zones, RulesError> {
        let map = v.as_object().cloned().unwrap();
        parse(&Path::root().key("production"), &map)
    }

    #[test]
    fn routes_by_host_exact_first_then_the_longest_wildcard_then_the_rest() {
        let z = zones(json!({"zones": [
            {"zone_id": "com", "hosts": ["www.example.com", "Example.com"]},
            {"zone_id": "de", "hosts": ["*.example.de"]},
            {"zone_id": "shop", "hosts": ["*.shop.example.de", "example.de"]},
            {"zone_id": "rest"}
        ]}))
        .unwrap();
        assert_eq!(z.route_url("https://www.example.com/a"), Some("com"));
        assert_eq!(z.route_url("https://EXAMPLE.com."), Some("com"));
        assert_eq!(
            z.route_url("https://user@www.example.com:8443/a?b"),
            Some("com")
        );
        assert_eq!(z.route_url("https://www.example.de/a"), Some("de"));
        assert_eq!(
            z.route_url("https://a.shop.example.de/a"),
            Some("shop"),
            "longest wildcard"
        );
        assert_eq!(
            z.route_url("https://example.de/"),
            Some("shop"),
            "*.x is not x itself"
        );
        assert_eq!(z.route_prefix("www.example.de/blog"), Some("de"));
        assert_eq!(z.route("img.example.org"), Some("rest"));
        let no_rest =
            zones(json!({"zones": [{"zone_id": "com", "hosts": ["example.com"]}]})).unwrap();
        assert_eq!(no_rest.route("example.org"), None, "no zone takes it");
        assert_eq!(no_rest.route("www.example.com"), None);
    }

    #[test]
    fn zone_id_alone_takes_every_host() {
        let z = zones(json!({"zone_id": "z1"})).unwrap();
        assert_eq!(z.only(), Some("z1"));
        assert_eq!(z.route("anything.example"), Some("z1"));
        assert!(zones(json!({})).unwrap().is_empty());
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_path() {
        let e = zones(json!({"zones": [
            {"zone_id": "a", "hosts": ["https://www.example.com", "www.example.com/x", "example.com:8080", "ok.example.com"]},
            {"zone_id": "b", "hosts": []},
            {"zone_id": "c", "hosts": ["OK.example.com"]},
            {"zone_id": "d"},
            {"zone_id": "e"},
            {"zone_id": "a", "hosts": ["x.example"]},
            {"hosts": ["y.example"]}
        ]}))
        .unwrap_err()
        .to_string();
        for want in [
            "ENVIRONMENTS.production.zones[0].hosts[0]: a host, not a URL",
            "ENVIRONMENTS.production.zones[0].hosts[1]: a host, without a path",
            "ENVIRONMENTS.production.zones[0].hosts[2]: a host, without a port",
            "ENVIRONMENTS.production.zones[1].hosts: must not be empty",
            "ENVIRONMENTS.production.zones[2].hosts[0]: ok.example.com is already served by zones[0]",
            "ENVIRONMENTS.production.zones[4]: only one zone may leave hosts out",
            "ENVIRONMENTS.production.zones[5].zone_id: zone a is listed twice",
            "ENVIRONMENTS.production.zones[6].zone_id: is required",
        ] {
            assert!(e.contains(want), "missing {want:?} in {e}");
        }
    }

    #[test]
    fn zone_id_and_zones_together_or_an_empty_list_are_refused() {
        let both = zones(json!({"zone_id": "a", "zones": [{"zone_id": "b"}]})).unwrap_err();
        assert!(
            both.to_string().contains("zone_id and zones together"),
            "{both}"
        );
        let empty = zones(json!({"zones": []})).unwrap_err();
        assert!(empty.to_string().contains("at least one zone"), "{empty}");
    }
}
