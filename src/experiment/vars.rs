//! `${name}`, `${env:NAME}` and `${env:NAME:-default}` substitution, and the secrets it
//! produces. Every value read from the environment is a secret: it is recorded so that
//! reports, logs and error messages can redact it.

use std::collections::BTreeMap;

use super::node::{Node, PathSeg, Pos, Value};

/// Values for `${name}`: the file's `vars:`, then `--var-file`, then `--var`, each
/// overriding the one before.
#[derive(Clone, Debug, Default)]
pub struct Vars {
    values: BTreeMap<String, String>,
}

impl Vars {
    pub fn new() -> Self {
        Vars::default()
    }

    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.values.insert(key.into(), value.into());
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// Parses a `--var K=V` argument.
    pub fn parse_assignment(arg: &str) -> Result<(String, String), String> {
        let (k, v) = arg
            .split_once('=')
            .ok_or_else(|| format!("invalid --var `{arg}`: write it as NAME=VALUE"))?;
        let k = k.trim();
        if !valid_var_name(k) {
            return Err(format!(
                "invalid variable name `{k}` in --var: use letters, digits, `_` and `-`, starting with a letter or `_`"
            ));
        }
        Ok((k.to_string(), v.to_string()))
    }
}

pub fn valid_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Values that must never be printed. Redaction replaces each with `***`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Secrets {
    values: Vec<String>,
}

impl Secrets {
    pub fn add(&mut self, value: &str) {
        // Very short values would redact ordinary text everywhere and protect nothing.
        if value.len() >= 3 && !self.values.iter().any(|v| v == value) {
            self.values.push(value.to_string());
            self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        }
    }

    pub fn extend(&mut self, other: &Secrets) {
        for v in &other.values {
            self.add(v);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), "***");
            }
        }
        out
    }
}

/// A problem found while substituting, located at the scalar it was found in.
#[derive(Clone, Debug, PartialEq)]
pub struct VarProblem {
    pub pos: Pos,
    pub message: String,
}

/// Looks up environment variables; a trait object so tests need not touch the process env.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Expands one string. Returns the text and whether any part of it came from the
/// environment (which makes the whole value secret).
pub fn expand(
    text: &str,
    vars: &Vars,
    env: EnvLookup,
    secrets: &mut Secrets,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        if let Some(escaped) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = escaped;
            continue;
        }
        if !after.starts_with("${") {
            out.push('$');
            rest = &after[1..];
            continue;
        }
        let close = after
            .find('}')
            .ok_or_else(|| format!("unterminated `${{` in `{text}`: close it with `}}` (write `$${{` for a literal `${{`)"))?;
        let expr = &after[2..close];
        rest = &after[close + 1..];
        if let Some(env_expr) = expr.strip_prefix("env:") {
            let (name, default) = match env_expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (env_expr, None),
            };
            if name.is_empty() {
                return Err("`${env:}` needs a variable name, e.g. ${env:API_TOKEN}".into());
            }
            match env(name) {
                Some(value) => {
                    secrets.add(&value);
                    out.push_str(&value);
                }
                None => match default {
                    Some(d) => out.push_str(d),
                    None => {
                        return Err(format!(
                            "environment variable `{name}` is not set: export it, or give a default with `${{env:{name}:-value}}`"
                        ));
                    }
                },
            }
        } else {
            let name = expr.trim();
            match vars.get(name) {
                Some(value) => out.push_str(value),
                None => {
                    let known: Vec<&str> = vars.keys().collect();
                    let mut msg = format!("undefined variable `${{{name}}}`");
                    if let Some(best) = super::node::nearest(name, &known) {
                        msg.push_str(&format!("; did you mean `${{{best}}}`?"));
                    } else {
                        msg.push_str(&format!(
                            ": define it under `vars:` or pass `--var {name}=VALUE`"
                        ));
                    }
                    return Err(msg);
                }
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Substitutes every string scalar in the tree, except those under the keys in `skip`
/// at the top level (the `vars:` block is resolved on its own). Collects every problem.
pub fn substitute(
    node: &mut Node,
    vars: &Vars,
    env: EnvLookup,
    secrets: &mut Secrets,
    skip: &[&str],
) -> Vec<VarProblem> {
    let mut problems = Vec::new();
    walk(node, vars, env, secrets, &mut problems, skip, true);
    problems
}

fn walk(
    node: &mut Node,
    vars: &Vars,
    env: EnvLookup,
    secrets: &mut Secrets,
    problems: &mut Vec<VarProblem>,
    skip: &[&str],
    top: bool,
) {
    match &mut node.value {
        Value::Str(s) if s.contains('$') => match expand(s, vars, env, secrets) {
            Ok(expanded) => {
                if expanded != *s {
                    *s = expanded;
                    node.substituted = true;
                }
            }
            Err(message) => problems.push(VarProblem {
                pos: node.pos,
                message,
            }),
        },
        Value::Seq(items) => {
            for item in items {
                walk(item, vars, env, secrets, problems, skip, false);
            }
        }
        Value::Map(entries) => {
            for (key, value) in entries {
                if top && skip.contains(&key.name.as_str()) {
                    continue;
                }
                walk(value, vars, env, secrets, problems, skip, false);
            }
        }
        _ => {}
    }
}

/// Path of a top-level `vars` entry, for locating problems in it.
pub fn var_path(name: &str) -> Vec<PathSeg> {
    vec![PathSeg::Key("vars".into()), PathSeg::Key(name.into())]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cr3t-value".into()),
            _ => None,
        }
    }

    #[test]
    fn expands_vars_env_and_defaults() {
        let mut vars = Vars::new();
        vars.set("url", "http://x/");
        let mut secrets = Secrets::default();
        for (text, expanded) in [
            ("${url}a", "http://x/a"),
            ("Bearer ${env:TOKEN}", "Bearer s3cr3t-value"),
            ("${env:NOPE:-fallback}", "fallback"),
            ("cost $5 $${x}", "cost $5 ${x}"),
        ] {
            assert_eq!(
                expand(text, &vars, &env, &mut secrets).unwrap(),
                expanded,
                "{text}"
            );
        }
        assert_eq!(secrets.redact("token=s3cr3t-value"), "token=***");
    }

    #[test]
    fn reports_undefined_and_unset() {
        let mut vars = Vars::new();
        vars.set("url", "x");
        let mut secrets = Secrets::default();
        let e = expand("${ulr}", &vars, &env, &mut secrets).unwrap_err();
        assert!(
            e.contains("undefined variable `${ulr}`") && e.contains("did you mean `${url}`"),
            "{e}"
        );
        let e = expand("${env:NOPE}", &vars, &env, &mut secrets).unwrap_err();
        assert!(e.contains("`NOPE` is not set"), "{e}");
        assert!(expand("${url", &vars, &env, &mut secrets).is_err());
    }

    #[test]
    fn parses_assignments() {
        assert_eq!(
            Vars::parse_assignment("a=b=c").unwrap(),
            ("a".into(), "b=c".into())
        );
        assert!(Vars::parse_assignment("novalue").is_err());
        assert!(Vars::parse_assignment("1x=2").is_err());
    }
}
