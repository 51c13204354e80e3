//! Property test: mutated example files never make the loader panic, and the binary
//! always answers 0 or 2.

mod support;

use faultline::experiment::{VarOverrides, load_experiment_str};
use proptest::prelude::*;
use support::{Run, root};

fn examples() -> Vec<String> {
    let dir = root().join("experiments");
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    out.sort();
    out
}

#[derive(Clone, Debug)]
enum Mutation {
    Delete(usize),
    Duplicate(usize),
    Swap(usize, usize),
    Flip(usize, u8),
    Indent(usize, bool),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Duplicate),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(a, c)| Mutation::Flip(a, c)),
        (any::<usize>(), any::<bool>()).prop_map(|(a, b)| Mutation::Indent(a, b)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(text: &str, muts: &[Mutation]) -> String {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    for m in muts {
        if lines.is_empty() {
            break;
        }
        let n = lines.len();
        match *m {
            Mutation::Delete(i) => {
                lines.remove(i % n);
            }
            Mutation::Duplicate(i) => {
                let l = lines[i % n].clone();
                lines.insert(i % n, l);
            }
            Mutation::Swap(a, b) => lines.swap(a % n, b % n),
            Mutation::Flip(i, c) => {
                let line = &mut lines[i % n];
                let chars: Vec<char> = line.chars().collect();
                if !chars.is_empty() {
                    let at = (c as usize * 7 + i) % chars.len();
                    let replacement = b" :-{}[]#&*!|>'\"%@`0a9\t"[c as usize % 22] as char;
                    *line = chars
                        .iter()
                        .enumerate()
                        .map(|(j, ch)| if j == at { replacement } else { *ch })
                        .collect();
                }
            }
            Mutation::Indent(i, more) => {
                let line = &mut lines[i % n];
                if more {
                    line.insert_str(0, "  ");
                } else if line.starts_with("  ") {
                    line.replace_range(..2, "");
                }
            }
            Mutation::Truncate(i) => {
                let line = &mut lines[i % n];
                let keep = line.chars().count() / 2;
                *line = line.chars().take(keep + i % 3).collect();
            }
        }
    }
    lines.join("\n")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn mutated_examples_never_panic(which in any::<usize>(), muts in proptest::collection::vec(mutation(), 1..6)) {
        let files = examples();
        let text = apply(&files[which % files.len()], &muts);
        match load_experiment_str("mutated.yaml", &text, &VarOverrides::default(), &|_| None) {
            Ok(_) => {}
            Err(diags) => {
                prop_assert!(!diags.is_empty());
                for d in diags {
                    prop_assert!(!d.message.is_empty());
                    if let (Some(l), Some(c)) = (d.line, d.column) {
                        prop_assert!(l >= 1 && c >= 1, "{:?}", d);
                    }
                }
            }
        }
    }
}

/// The binary on a few hundred mutants: never a crash, always 0 or 2.
#[test]
fn binary_exits_0_or_2_on_mutants() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let dir = tempfile::tempdir().unwrap();
    let files = examples();
    let mut runner = TestRunner::deterministic();
    let strategy = (any::<usize>(), proptest::collection::vec(mutation(), 1..6));
    let mut paths = Vec::new();
    for i in 0..300 {
        let (which, muts) = strategy.new_tree(&mut runner).unwrap().current();
        let p = dir.path().join(format!("m{i}.yaml"));
        std::fs::write(&p, apply(&files[which % files.len()], &muts)).unwrap();
        paths.push(p);
    }
    for chunk in paths.chunks(50) {
        let out = Run::new(["validate"]).args(chunk).output();
        let code = out.code;
        assert!(
            matches!(code, Some(0) | Some(2)),
            "exit {code:?}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"));
    }
}
