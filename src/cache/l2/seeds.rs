//! URLs that list several hosts, `redis[s]://[user[:password]@]h1:p1,h2:p2,...[/db][?query]`:
//! the seed nodes of a Redis Cluster. Scheme, credentials, database and query apply to
//! every host.

use crate::cache::redact::redact_url;

/// The parts of a URL around its host list.
struct Parts<'a> {
    /// `scheme://` plus `user:password@` if any.
    head: &'a str,
    hosts: Vec<&'a str>,
    /// `/db?query#fragment`, possibly empty.
    tail: &'a str,
}

fn parts(url: &str) -> Option<Parts<'_>> {
    let scheme_end = url.find("://")? + 3;
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let hosts_start = authority.rfind('@').map_or(0, |i| i + 1);
    let hosts: Vec<&str> = authority[hosts_start..].split(',').map(str::trim).collect();
    if hosts.iter().any(|h| h.is_empty()) {
        return None;
    }
    Some(Parts {
        head: &url[..scheme_end + hosts_start],
        hosts,
        tail: &rest[authority_end..],
    })
}

/// One URL per host (a single-host URL gives itself); `None` when the host list has an
/// empty entry or there is no `scheme://`.
pub fn split(url: &str) -> Option<Vec<String>> {
    let p = parts(url)?;
    Some(
        p.hosts
            .iter()
            .map(|h| format!("{}{}{}", p.head, h, p.tail))
            .collect(),
    )
}

/// The URL with its password masked, hosts kept (`redis://u:***@h1:1,h2:2/0`).
pub fn redact(url: &str) -> String {
    let Some(p) = parts(url) else {
        return redact_url(url);
    };
    if p.hosts.len() == 1 {
        return redact_url(url);
    }
    let first = redact_url(&format!("{}{}{}", p.head, p.hosts[0], p.tail));
    // Put the other hosts back after the first one (as the URL crate printed it).
    if let Some(at) = first.find("://").map(|i| i + 3) {
        let after_auth = first[at..].find('@').map_or(at, |i| at + i + 1);
        let host_end = first[after_auth..]
            .find(['/', '?', '#'])
            .map_or(first.len(), |i| after_auth + i);
        return format!(
            "{},{}{}",
            &first[..host_end],
            p.hosts[1..].join(","),
            &first[host_end..]
        );
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_hosts_keeping_credentials_and_tail() {
        assert_eq!(
            split("redis://u:p@127.0.0.1:7000,127.0.0.1:7001/0?x=1").unwrap(),
            vec![
                "redis://u:p@127.0.0.1:7000/0?x=1",
                "redis://u:p@127.0.0.1:7001/0?x=1"
            ]
        );
        assert_eq!(
            split("rediss://[::1]:7000, [::1]:7001").unwrap(),
            vec!["rediss://[::1]:7000", "rediss://[::1]:7001"]
        );
        assert_eq!(split("redis://h:1").unwrap(), vec!["redis://h:1"]);
        assert!(split("redis://h:1,,h:2").is_none());
        assert!(split("h:1,h:2").is_none());
    }

    #[test]
    fn redacts_every_form() {
        assert_eq!(
            redact("redis://u:hunter2@127.0.0.1:7000,127.0.0.1:7001/0"),
            "redis://u:***@127.0.0.1:7000,127.0.0.1:7001/0"
        );
        assert_eq!(redact("redis://:pw@h:1,h:2"), "redis://:***@h:1,h:2");
        assert_eq!(redact("redis://u:pw@h:1/2"), "redis://u:***@h:1/2");
        assert!(!redact("redis://u:pw@h:x,h:2").contains("pw"));
    }
}
