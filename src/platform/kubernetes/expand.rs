//! Kubernetes' variable expansion in a container's `command` and `args` (and in an exec
//! probe's command), and how to keep a script out of it.
//!
//! The documented rules (API reference, `Container.command`): "Variable references
//! `$(VAR_NAME)` are expanded using the container's environment. If a variable cannot be
//! resolved, the reference in the input string will be unchanged. Double `$$` are reduced
//! to a single `$`, which allows for escaping the `$(VAR_NAME)` syntax: i.e. `$$(VAR_NAME)`
//! will produce the string literal `$(VAR_NAME)`. Escaped references will never be
//! expanded, regardless of whether the variable exists or not."
//!
//! The kubelet does this with `third_party/forked/golang/expansion`; [`expand`] follows it
//! character for character: `$` followed by `$` gives `$`; `$(` reads a name up to the
//! next `)` (an unclosed `$(` stays as it is); `$` followed by anything else, or at the
//! end, stays.
//!
//! A shell script is full of `$`: `echo $$` would write `$`. [`escape`] doubles every `$`,
//! which [`expand`] turns back into exactly the original, whatever the environment.

use std::collections::HashMap;

/// What the kubelet makes of `input` with the container's environment `env`.
pub fn expand(input: &str, env: &HashMap<String, String>) -> String {
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < bytes.len() {
        if bytes[cursor] == b'$' && cursor + 1 < bytes.len() {
            out.push_str(&input[checkpoint..cursor]);
            let rest = &input[cursor + 1..];
            let advance = match rest.as_bytes()[0] {
                b'$' => {
                    out.push('$');
                    1
                }
                b'(' => match rest[1..].find(')') {
                    Some(end) => {
                        let name = &rest[1..1 + end];
                        match env.get(name) {
                            Some(value) => out.push_str(value),
                            None => {
                                out.push_str("$(");
                                out.push_str(name);
                                out.push(')');
                            }
                        }
                        end + 2
                    }
                    // Incomplete: `$(` stays, and the text after it is read on.
                    None => {
                        out.push_str("$(");
                        1
                    }
                },
                // `$x` stays `$x`; the next character is copied, not read again.
                _ => {
                    let next = rest.chars().next().expect("not empty");
                    out.push('$');
                    out.push(next);
                    next.len_utf8()
                }
            };
            cursor += advance;
            checkpoint = cursor + 1;
        }
        cursor += 1;
    }
    out.push_str(&input[checkpoint.min(input.len())..]);
    out
}

/// `input` such that [`expand`] gives back exactly `input`, in any environment.
pub fn escape(input: &str) -> String {
    input.replace('$', "$$")
}

/// [`escape`] on each element: a `command` or `args` list.
pub fn escape_all<S: AsRef<str>>(argv: &[S]) -> Vec<String> {
    argv.iter().map(|a| escape(a.as_ref())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> HashMap<String, String> {
        [
            ("VAR", "value"),
            ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
            ("EMPTY", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// The documented rules, and the cases of the kubelet's own expansion tests.
    #[test]
    fn follows_the_documented_rules() {
        let e = env();
        let cases = [
            // A defined variable expands; an undefined one stays literal.
            ("$(VAR)", "value"),
            ("x$(VAR)y", "xvaluey"),
            ("$(EMPTY)", ""),
            ("$(UNDEFINED)", "$(UNDEFINED)"),
            ("$(VAR)$(UNDEFINED)$(VAR)", "value$(UNDEFINED)value"),
            // `$$` is `$`; `$$(VAR)` is the literal `$(VAR)`, defined or not.
            ("$$", "$"),
            ("echo $$ > /tmp/pid", "echo $ > /tmp/pid"),
            ("$$(VAR)", "$(VAR)"),
            ("$$(UNDEFINED)", "$(UNDEFINED)"),
            ("$$$(VAR)", "$value"),
            ("$$$$(VAR)", "$$(VAR)"),
            // `$` before anything else, or at the end, stays.
            ("$", "$"),
            ("a$", "a$"),
            ("$VAR", "$VAR"),
            ("${VAR}", "${VAR}"),
            ("$1 $? $! $0", "$1 $? $! $0"),
            ("$é", "$é"),
            // An unclosed reference stays; a name runs to the first `)`.
            ("$(VAR", "$(VAR"),
            ("$(", "$("),
            ("$()", "$()"),
            ("$((n+1))", "$((n+1))"),
            ("$(( ${u%.*} + 3 ))", "$(( ${u%.*} + 3 ))"),
            ("$(KUBERNETES_SERVICE_HOST):443", "10.96.0.1:443"),
        ];
        for (input, want) in cases {
            assert_eq!(expand(input, &e), want, "expand({input:?})");
        }
    }

    #[test]
    fn escaped_text_survives_expansion_unchanged() {
        let e = env();
        let scripts = [
            "",
            "$",
            "$$",
            "$$$",
            "a$",
            "$(VAR)",
            "$$(VAR)",
            "$(VAR",
            "echo $$ > /tmp/faultline-net.pid || exit 1; sleep 70 & wait $!",
            "read pid < /tmp/p && kill -TERM \"$pid\"",
            "end=$(( ${u%.*}${u#*.} + 3000 )); n=$((n+1)); x=$(KUBERNETES_SERVICE_HOST)",
            crate::platform::kubernetes::pause::SCRIPT,
            "naïve $é €$",
        ];
        for s in scripts {
            assert_eq!(expand(&escape(s), &e), s, "escape({s:?})");
        }
        assert_eq!(
            escape_all(&["sh", "-c", "echo $$"]),
            ["sh", "-c", "echo $$$$"]
        );
    }
}
