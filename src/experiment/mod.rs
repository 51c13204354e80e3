//! Experiment and scenario files: parse, substitute variables, map onto the typed model,
//! validate. Nothing here touches a platform; every problem comes back as a
//! [`Diagnostic`] with its file, line and column.

pub mod diagnostic;
pub mod model;
pub mod node;
pub mod schedule_text;
pub mod selector;
pub mod units;
pub mod validate;
pub mod vars;

use std::cell::RefCell;
use std::path::{Path, PathBuf};

pub use diagnostic::Diagnostic;
pub use model::{Experiment, Fault, ProbeKind, ProbeSpec, Scenario};
use node::{Node, PathSeg, Value};
pub use vars::{Secrets, Vars};

/// Variable overrides from the command line.
#[derive(Clone, Debug, Default)]
pub struct VarOverrides {
    /// `--var-file` files, in order.
    pub files: Vec<PathBuf>,
    /// `--var K=V`, in order; later ones win.
    pub vars: Vec<(String, String)>,
    /// An unset `${env:NAME}` is a warning, not an error (`validate` without `--strict`,
    /// so that a lint step needs no secrets). The value stands in as a placeholder; the
    /// checks of the values that use it are skipped.
    pub unset_env_is_warning: bool,
}

/// Stands for an unset environment variable when that is only a warning.
const UNSET_ENV_MARK: &str = "faultline-unset-env-";

/// The names of the unset environment variables whose placeholders `text` contains.
fn unset_env_names(text: &str) -> Vec<String> {
    text.match_indices(UNSET_ENV_MARK)
        .map(|(i, m)| {
            text[i + m.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

/// Every string scalar that contains a placeholder: its path, position and env names.
fn placeholders(
    node: &Node,
    path: &mut Vec<PathSeg>,
    out: &mut Vec<(Vec<PathSeg>, node::Pos, Vec<String>)>,
) {
    match &node.value {
        Value::Str(s) if s.contains(UNSET_ENV_MARK) => {
            out.push((path.clone(), node.pos, unset_env_names(s)));
        }
        Value::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(PathSeg::Index(i));
                placeholders(item, path, out);
                path.pop();
            }
        }
        Value::Map(entries) => {
            for (k, v) in entries {
                path.push(PathSeg::Key(k.name.clone()));
                placeholders(v, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// A loaded, validated experiment and what it needs to be reported safely.
#[derive(Clone, Debug)]
pub struct LoadedExperiment {
    pub file: PathBuf,
    pub experiment: Experiment,
    pub secrets: Secrets,
    /// Problems that do not stop this command (unset `${env:...}` under `validate`).
    pub warnings: Vec<Diagnostic>,
}

#[derive(Clone, Debug)]
pub struct LoadedScenario {
    pub file: PathBuf,
    pub scenario: Scenario,
    /// Each entry's experiment, loaded with the entry's vars, in order (a `parallel`
    /// group's experiments one after another).
    pub experiments: Vec<LoadedExperiment>,
    /// The steps a game day takes: indices into `experiments`, one for a plain entry,
    /// several for a `parallel` group (started together).
    pub steps: Vec<Vec<usize>>,
}

#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // one per file, short-lived
pub enum Loaded {
    Experiment(Box<LoadedExperiment>),
    Scenario(LoadedScenario),
}

/// Reads environment variables for `${env:...}`.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Loads either kind of file, deciding by its `kind:`.
pub fn load(path: &Path, overrides: &VarOverrides) -> Result<Loaded, Vec<Diagnostic>> {
    let label = path.display().to_string();
    let text = read(path)?;
    let tree = parse_tree(&label, &text)?;
    if tree.get("kind").and_then(Node::as_str) == Some("scenario") {
        load_scenario_tree(path, &label, tree, overrides).map(Loaded::Scenario)
    } else {
        load_experiment_tree(path, &label, tree, &[], overrides, &process_env)
            .map(|e| Loaded::Experiment(Box::new(e)))
    }
}

/// Loads a file that must be an experiment.
pub fn load_experiment(
    path: &Path,
    overrides: &VarOverrides,
) -> Result<LoadedExperiment, Vec<Diagnostic>> {
    match load(path, overrides)? {
        Loaded::Experiment(e) => Ok(*e),
        Loaded::Scenario(_) => Err(vec![Diagnostic::new(
            &path.display().to_string(),
            None,
            "this is a scenario file: run it with `faultline gameday`",
        )]),
    }
}

/// Loads an experiment from text, for tests and tools; `env` stands in for the process
/// environment.
pub fn load_experiment_str(
    label: &str,
    text: &str,
    overrides: &VarOverrides,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<LoadedExperiment, Vec<Diagnostic>> {
    let tree = parse_tree(label, text)?;
    load_experiment_tree(Path::new(label), label, tree, &[], overrides, env)
}

fn read(path: &Path) -> Result<String, Vec<Diagnostic>> {
    std::fs::read_to_string(path).map_err(|e| {
        vec![Diagnostic::new(
            &path.display().to_string(),
            None,
            format!("cannot read the file: {e}"),
        )]
    })
}

fn parse_tree(label: &str, text: &str) -> Result<Node, Vec<Diagnostic>> {
    let tree = Node::parse(text).map_err(|(msg, pos)| vec![Diagnostic::new(label, pos, msg)])?;
    match tree.value {
        Value::Map(_) => Ok(tree),
        Value::Null => Err(vec![Diagnostic::new(
            label,
            None,
            "the file is empty: an experiment needs at least `version`, `name`, `target` and `faults`",
        )]),
        _ => Err(vec![Diagnostic::new(
            label,
            Some(tree.pos),
            format!(
                "expected a mapping of keys (version, name, target, ...), found {}",
                tree.describe()
            ),
        )]),
    }
}

/// Resolves the variables an experiment sees: its own `vars:` (which may read the
/// environment), then entry vars from a scenario, then `--var-file`, then `--var`.
fn resolve_vars(
    label: &str,
    tree: &Node,
    entry_vars: &[(String, String)],
    overrides: &VarOverrides,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: &mut Secrets,
    diags: &mut Vec<Diagnostic>,
) -> Vars {
    let mut vars = Vars::new();
    if let Some(Node {
        value: Value::Map(entries),
        ..
    }) = tree.get("vars")
    {
        for (key, value) in entries {
            let text = match &value.value {
                Value::Null => String::new(),
                // A scalar as written: `1.10` stays `1.10`.
                _ => match value.scalar_text() {
                    Some(t) => t,
                    None => continue, // reported as a type error by the typed model
                },
            };
            match vars::expand(&text, &vars, env, secrets) {
                Ok(v) => vars.set(key.name.clone(), v),
                Err(m) => diags.push(Diagnostic::new(label, Some(value.pos), m)),
            }
        }
    }
    for (k, v) in entry_vars {
        vars.set(k.clone(), v.clone());
    }
    for file in &overrides.files {
        match read_var_file(file) {
            Ok(pairs) => {
                for (k, v) in pairs {
                    vars.set(k, v);
                }
            }
            Err(d) => diags.extend(d),
        }
    }
    for (k, v) in &overrides.vars {
        vars.set(k.clone(), v.clone());
    }
    vars
}

/// Reads a `--var-file`: a YAML mapping of names to scalar values.
pub fn read_var_file(path: &Path) -> Result<Vec<(String, String)>, Vec<Diagnostic>> {
    let label = path.display().to_string();
    let text = read(path)?;
    let tree = Node::parse(&text).map_err(|(msg, pos)| vec![Diagnostic::new(&label, pos, msg)])?;
    let Value::Map(entries) = tree.value else {
        return Err(vec![Diagnostic::new(
            &label,
            Some(tree.pos),
            "a var file is a mapping of names to values, e.g. `url: http://127.0.0.1:8080/`",
        )]);
    };
    let mut out = Vec::new();
    let mut diags = Vec::new();
    for (key, value) in entries {
        let Some(text) = value.scalar_text() else {
            diags.push(Diagnostic::new(
                &label,
                Some(value.pos),
                format!("var `{}` must be a scalar value", key.name),
            ));
            continue;
        };
        if !vars::valid_var_name(&key.name) {
            diags.push(Diagnostic::new(
                &label,
                Some(key.pos),
                format!("invalid variable name `{}`", key.name),
            ));
            continue;
        }
        out.push((key.name, text));
    }
    if diags.is_empty() {
        Ok(out)
    } else {
        Err(diags)
    }
}

fn load_experiment_tree(
    path: &Path,
    label: &str,
    mut tree: Node,
    entry_vars: &[(String, String)],
    overrides: &VarOverrides,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<LoadedExperiment, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let mut secrets = Secrets::default();
    let lenient = |name: &str| {
        env(name).or_else(|| {
            overrides
                .unset_env_is_warning
                .then(|| format!("{UNSET_ENV_MARK}{name}"))
        })
    };
    let env: &dyn Fn(&str) -> Option<String> = &lenient;
    let vars = resolve_vars(
        label,
        &tree,
        entry_vars,
        overrides,
        env,
        &mut secrets,
        &mut diags,
    );
    let var_problems = vars::substitute(&mut tree, &vars, env, &mut secrets, &["vars"]);
    let mut tainted = Vec::new();
    for p in var_problems {
        tainted.extend(tree.path_at(p.pos));
        diags.push(Diagnostic::new(label, Some(p.pos), p.message));
    }
    // Values that stand on an unset environment variable: a warning each, and their own
    // checks are skipped (the placeholder is not the value a run would see).
    let mut warnings = Vec::new();
    let mut unset = Vec::new();
    placeholders(&tree, &mut Vec::new(), &mut unset);
    for (at, pos, names) in &unset {
        for name in names {
            warnings.push(Diagnostic::new(
                label,
                Some(*pos),
                format!(
                    "warning: environment variable `{name}` is not set: `faultline run` will need it (export it, or give a default with `${{env:{name}:-value}}`)"
                ),
            ));
        }
        tainted.push(at.clone());
    }
    let mut typed = deserialize::<Experiment>(label, &tree, &mut diags);
    diags.retain(|d| {
        !unset
            .iter()
            .any(|(_, pos, _)| d.line == Some(pos.line) && d.column == Some(pos.column))
    });
    // A value whose variable could not be substituted would fail its own check too.
    typed.removed.extend(tainted);
    if let Some(experiment) = &typed.value {
        for p in after_repair(&tree, &typed, validate::experiment(experiment)) {
            diags.push(located(label, &tree, &typed.repaired, p));
        }
    }
    finish(diags, &secrets)?;
    Ok(LoadedExperiment {
        file: path.to_path_buf(),
        experiment: typed
            .value
            .expect("no diagnostics means the model was built"),
        secrets,
        warnings: sorted(warnings),
    })
}

fn load_scenario_tree(
    path: &Path,
    label: &str,
    tree: Node,
    overrides: &VarOverrides,
) -> Result<LoadedScenario, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let typed = deserialize::<Scenario>(label, &tree, &mut diags);
    let Some(scenario) = &typed.value else {
        return Err(sorted(diags));
    };
    for p in after_repair(&tree, &typed, validate::scenario(scenario)) {
        diags.push(located(label, &tree, &typed.repaired, p));
    }
    let scenario = scenario.clone();
    let base = path.parent().unwrap_or(Path::new("."));
    let mut experiments = Vec::new();
    let mut steps = Vec::new();
    for (i, step) in scenario.experiments.iter().enumerate() {
        let mut indices = Vec::new();
        for (inner, entry_file, entry_vars) in step.files() {
            let file = base.join(entry_file);
            let entry_vars: Vec<(String, String)> = entry_vars
                .iter()
                .map(|(k, v)| (k.clone(), v.as_text()))
                .collect();
            let loaded = read(&file)
                .and_then(|text| {
                    let l = file.display().to_string();
                    let t = parse_tree(&l, &text)?;
                    if t.get("kind").and_then(Node::as_str) == Some("scenario") {
                        return Err(vec![Diagnostic::new(
                            &l,
                            None,
                            "a scenario cannot include another scenario",
                        )]);
                    }
                    load_experiment_tree(&file, &l, t, &entry_vars, overrides, &process_env)
                })
                .map_err(|mut d| {
                    let mut path = vec![PathSeg::Key("experiments".into()), PathSeg::Index(i)];
                    path.extend(inner.iter().cloned());
                    path.push(PathSeg::Key("file".into()));
                    let at = tree.pos_of(&path);
                    d.insert(
                        0,
                        Diagnostic::new(
                            label,
                            Some(at),
                            format!("experiment `{entry_file}` is not valid:"),
                        ),
                    );
                    d
                });
            match loaded {
                Ok(e) => {
                    indices.push(experiments.len());
                    experiments.push(e);
                }
                Err(d) => diags.extend(d),
            }
        }
        steps.push(indices);
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    Ok(LoadedScenario {
        file: path.to_path_buf(),
        scenario,
        experiments,
        steps,
    })
}

/// The typed model, built from a tree that may have had bad values cut out of it.
struct Typed<T> {
    value: Option<T>,
    /// The tree the model was built from: positions still point into the original file.
    repaired: Node,
    /// Paths (in the original tree) of the values that were cut out.
    removed: Vec<Vec<PathSeg>>,
}

/// Deserializes `T`, reporting every unknown key and as many type errors as it can: a
/// value that does not fit is reported, cut out of the tree, and the mapping retried, so
/// one bad duration does not hide the problems after it.
fn deserialize<T: serde::de::DeserializeOwned>(
    label: &str,
    tree: &Node,
    diags: &mut Vec<Diagnostic>,
) -> Typed<T> {
    let mut repaired = tree.clone();
    let mut removed = Vec::new();
    for _ in 0..64 {
        let unknown = RefCell::new(Vec::new());
        let result = serde_path_to_error::deserialize::<_, T>(node::NodeDeserializer::new(
            &repaired, &unknown,
        ));
        for u in unknown.into_inner() {
            diags.push(Diagnostic::new(label, Some(u.pos), u.message()));
        }
        let err = match result {
            Ok(v) => {
                return Typed {
                    value: Some(v),
                    repaired,
                    removed,
                };
            }
            Err(e) => e,
        };
        let serde_path: Vec<PathSeg> = err
            .path()
            .iter()
            .filter_map(|seg| match seg {
                serde_path_to_error::Segment::Seq { index } => Some(PathSeg::Index(*index)),
                serde_path_to_error::Segment::Map { key } => Some(PathSeg::Key(key.clone())),
                serde_path_to_error::Segment::Enum { variant } => {
                    Some(PathSeg::Key(variant.clone()))
                }
                serde_path_to_error::Segment::Unknown => None,
            })
            .collect();
        let inner = err.into_inner();
        let original_path = inner.pos.and_then(|p| tree.path_at(p)).unwrap_or_default();
        let path = node::path_string(&original_path);
        let missing = inner
            .message
            .strip_prefix("missing field ")
            .map(|f| f.trim_matches('`').to_string());
        let cut = match &missing {
            // A required value we cut out ourselves: the error was reported already; cut
            // out the enclosing list item (or the enclosing block) instead.
            Some(field)
                if removed.contains(
                    &[original_path.clone(), vec![PathSeg::Key(field.clone())]].concat(),
                ) =>
            {
                match serde_path
                    .iter()
                    .rposition(|s| matches!(s, PathSeg::Index(_)))
                {
                    Some(i) => serde_path[..=i].to_vec(),
                    None => serde_path.clone(),
                }
            }
            Some(field) => {
                let message = if path.is_empty() {
                    format!("missing required key `{field}`")
                } else {
                    format!("missing required key `{field}` in `{path}`")
                };
                diags.push(Diagnostic::new(label, inner.pos, message));
                break;
            }
            None => {
                let message = if path.is_empty() {
                    plain_types(&inner.message)
                } else {
                    format!("{path}: {}", plain_types(&inner.message))
                };
                diags.push(Diagnostic::new(label, inner.pos, message));
                serde_path
            }
        };
        let cut_original = translate_path(&repaired, tree, &cut);
        if cut.is_empty() || !repaired.remove(&cut) {
            break;
        }
        removed.push(cut_original);
    }
    Typed {
        value: None,
        repaired,
        removed,
    }
}

/// serde names Rust types ("expected u64"); users think in YAML values.
fn plain_types(message: &str) -> String {
    let mut m = message.to_string();
    for (rust, plain) in [
        ("expected u64", "expected a whole number"),
        ("expected u32", "expected a whole number"),
        ("expected u16", "expected a whole number"),
        ("expected u8", "expected a whole number"),
        ("expected i64", "expected a whole number"),
        ("expected i32", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected a boolean", "expected true or false"),
        ("expected a sequence", "expected a list"),
        ("expected a map", "expected a mapping"),
    ] {
        m = m.replace(rust, plain);
    }
    m
}

fn located(label: &str, original: &Node, typed_tree: &Node, p: validate::Problem) -> Diagnostic {
    let pos = typed_tree.pos_of(&p.path);
    let path = translate_path(typed_tree, original, &p.path);
    Diagnostic::new(label, Some(pos), p.message).with_path(node::path_string(&path))
}

/// Translates a path in the repaired tree into the original tree, where list items that
/// were cut out shift the indexes: items are matched by their position in the file.
fn translate_path(repaired: &Node, original: &Node, path: &[PathSeg]) -> Vec<PathSeg> {
    let mut out = Vec::with_capacity(path.len());
    let (mut r, mut o) = (repaired, original);
    for seg in path {
        let (Value::Map(_) | Value::Seq(_), Value::Map(_) | Value::Seq(_)) = (&r.value, &o.value)
        else {
            break;
        };
        match seg {
            PathSeg::Key(k) => match (r.get(k), o.get(k)) {
                (Some(rn), Some(on)) => {
                    out.push(seg.clone());
                    r = rn;
                    o = on;
                }
                _ => {
                    out.push(seg.clone());
                    break;
                }
            },
            PathSeg::Index(i) => {
                let (Value::Seq(ritems), Value::Seq(oitems)) = (&r.value, &o.value) else {
                    break;
                };
                let Some(rn) = ritems.get(*i) else { break };
                let Some(j) = oitems.iter().position(|on| on.pos == rn.pos) else {
                    break;
                };
                out.push(PathSeg::Index(j));
                r = rn;
                o = &oitems[j];
            }
        }
    }
    out
}

/// Semantic problems about values that were cut out for a type error would only repeat
/// that error in other words.
fn after_repair<T>(
    original: &Node,
    typed: &Typed<T>,
    problems: Vec<validate::Problem>,
) -> Vec<validate::Problem> {
    problems
        .into_iter()
        .filter(|p| {
            let at = translate_path(&typed.repaired, original, &p.path);
            // Inside a cut-out value, or about the list or block a value was cut from.
            !typed
                .removed
                .iter()
                .any(|r| at.starts_with(r) || (r.starts_with(&at) && r.len() == at.len() + 1))
        })
        .collect()
}

fn sorted(mut diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
    diags.sort_by_key(|d| (d.line.unwrap_or(0), d.column.unwrap_or(0)));
    diags.dedup();
    diags
}

fn finish(diags: Vec<Diagnostic>, secrets: &Secrets) -> Result<(), Vec<Diagnostic>> {
    if diags.is_empty() {
        return Ok(());
    }
    Err(sorted(diags)
        .into_iter()
        .map(|mut d| {
            d.message = secrets.redact(&d.message);
            d
        })
        .collect())
}
