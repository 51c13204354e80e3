//! Kubernetes label- and field-selector syntax, checked before anything is sent to a cluster.

/// One requirement of a label selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requirement {
    Exists(String),
    NotExists(String),
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

impl Requirement {
    /// Whether a set of labels satisfies the requirement.
    pub fn matches(&self, labels: &std::collections::BTreeMap<String, String>) -> bool {
        match self {
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
        }
    }
}

/// Parses a label selector such as `app=api,tier!=canary,env in (prod, staging),!legacy`.
pub fn parse_label_selector(text: &str) -> Result<Vec<Requirement>, String> {
    let mut reqs = Vec::new();
    for part in split_top_level(text)? {
        let part = part.trim();
        if part.is_empty() {
            return Err(format!(
                "empty requirement in label selector `{text}`: remove the extra comma"
            ));
        }
        reqs.push(parse_requirement(part)?);
    }
    Ok(reqs)
}

fn split_top_level(text: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!("unbalanced `)` in label selector `{text}`"));
                }
            }
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!("unclosed `(` in label selector `{text}`"));
    }
    parts.push(&text[start..]);
    Ok(parts)
}

fn parse_requirement(part: &str) -> Result<Requirement, String> {
    if let Some(key) = part.strip_prefix('!') {
        let key = key.trim();
        check_key(key)?;
        return Ok(Requirement::NotExists(key.into()));
    }
    for (op, ctor) in [
        (
            "!=",
            Requirement::NotEquals as fn(String, String) -> Requirement,
        ),
        ("==", Requirement::Equals),
        ("=", Requirement::Equals),
    ] {
        if let Some((k, v)) = part.split_once(op) {
            let (k, v) = (k.trim(), v.trim());
            check_key(k)?;
            check_value(v)?;
            return Ok(ctor(k.into(), v.into()));
        }
    }
    let words: Vec<&str> = part.splitn(2, char::is_whitespace).collect();
    if words.len() == 2 {
        let key = words[0];
        let rest = words[1].trim_start();
        let (negated, list) = if let Some(r) = rest.strip_prefix("notin") {
            (true, r)
        } else if let Some(r) = rest.strip_prefix("in") {
            (false, r)
        } else {
            return Err(format!(
                "invalid requirement `{part}`: expected key=value, key!=value, key in (a,b), key notin (a,b), key or !key"
            ));
        };
        check_key(key)?;
        let list = list.trim();
        let inner = list
            .strip_prefix('(')
            .and_then(|l| l.strip_suffix(')'))
            .ok_or_else(|| {
                format!("invalid set in `{part}`: write the values in parentheses, e.g. (a, b)")
            })?;
        let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
        if values.iter().all(String::is_empty) {
            return Err(format!("empty set in `{part}`: name at least one value"));
        }
        for v in &values {
            check_value(v)?;
        }
        return Ok(if negated {
            Requirement::NotIn(key.into(), values)
        } else {
            Requirement::In(key.into(), values)
        });
    }
    check_key(part)?;
    Ok(Requirement::Exists(part.into()))
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a name of at most 63
/// characters, alphanumeric at both ends with `-`, `_`, `.` inside.
fn check_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        let ok = !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
        if !ok {
            return Err(format!(
                "invalid label key prefix `{p}` in `{key}`: it must be a DNS subdomain such as example.com"
            ));
        }
    }
    if !is_label_name(name) {
        return Err(format!(
            "invalid label key `{key}`: at most 63 characters, [A-Za-z0-9] at both ends, `-`, `_` or `.` inside"
        ));
    }
    Ok(())
}

fn check_value(v: &str) -> Result<(), String> {
    if v.is_empty() || is_label_name(v) {
        Ok(())
    } else {
        Err(format!(
            "invalid label value `{v}`: at most 63 characters, [A-Za-z0-9] at both ends, `-`, `_` or `.` inside"
        ))
    }
}

fn is_label_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    !s.is_empty()
        && s.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Checks a field selector: `key=value` / `key==value` / `key!=value`, comma-separated.
pub fn check_field_selector(text: &str) -> Result<(), String> {
    for part in text.split(',') {
        let part = part.trim();
        let (k, _) = part
            .split_once("!=")
            .or_else(|| part.split_once("=="))
            .or_else(|| part.split_once('='))
            .ok_or_else(|| {
                format!("invalid field selector requirement `{part}`: write field=value or field!=value, e.g. status.phase=Running")
            })?;
        let k = k.trim();
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') {
            return Err(format!(
                "invalid field `{k}` in field selector `{text}`: e.g. status.phase or metadata.name"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let r = parse_label_selector(
            "app=api,tier!=canary,env in (prod, staging),!legacy,team,x notin (a)",
        )
        .unwrap();
        assert_eq!(r.len(), 6);
        assert_eq!(r[0], Requirement::Equals("app".into(), "api".into()));
        assert_eq!(r[1], Requirement::NotEquals("tier".into(), "canary".into()));
        assert_eq!(
            r[2],
            Requirement::In("env".into(), vec!["prod".into(), "staging".into()])
        );
        assert_eq!(r[3], Requirement::NotExists("legacy".into()));
        assert_eq!(r[4], Requirement::Exists("team".into()));
        assert!(parse_label_selector("app.kubernetes.io/name=web").is_ok());
    }

    #[test]
    fn rejects_bad_selectors() {
        for bad in [
            "app=",
            "=x",
            "app==a b",
            "env in prod",
            "env in (a",
            "a,,b",
            "-app=x",
            "app=x!",
        ] {
            if bad == "app=" {
                assert!(parse_label_selector(bad).is_ok(), "empty value is allowed");
                continue;
            }
            assert!(
                parse_label_selector(bad).is_err(),
                "{bad} should be rejected"
            );
        }
    }

    #[test]
    fn matching() {
        let labels = [("app".to_string(), "api".to_string())]
            .into_iter()
            .collect();
        let r = parse_label_selector("app=api,!legacy,tier notin (canary)").unwrap();
        assert!(r.iter().all(|q| q.matches(&labels)));
    }

    #[test]
    fn field_selectors() {
        assert!(check_field_selector("status.phase=Running,spec.nodeName!=n1").is_ok());
        assert!(check_field_selector("status phase").is_err());
    }
}
