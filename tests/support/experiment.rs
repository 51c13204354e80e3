//! One experiment builder: each test states its scenario in a few lines and gets the YAML
//! a user would write.
//!
//! ```ignore
//! let exp = Experiment::new("pause-one-web")
//!     .on(&fleet)
//!     .steady(Probe::http(&url).with("status", "[200]"))
//!     .fault("pause: {duration: 2s}");
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::docker::Fleet;

/// A probe: `name`, probe-level settings (`min_success`, `retries`, ...) and its kind's
/// mapping (`http: {url: ..., timeout: ...}`).
#[derive(Clone, Debug)]
pub struct Probe {
    name: String,
    kind: String,
    /// `key: value` pieces of the kind's flow mapping.
    fields: Vec<String>,
    settings: Vec<(String, String)>,
}

impl Probe {
    /// A probe of `kind` whose first field is `key: value` (value as YAML).
    pub fn new(kind: &str, key: &str, value: &str) -> Probe {
        Probe {
            name: kind.to_string(),
            kind: kind.to_string(),
            fields: vec![format!("{key}: {value}")],
            settings: Vec::new(),
        }
    }

    /// A probe of `kind` whose mapping is given as YAML flow text, e.g. `{url: x, min: 1}`.
    pub fn flow(kind: &str, mapping: &str) -> Probe {
        let mapping = mapping.trim();
        let inner = mapping
            .strip_prefix('{')
            .and_then(|m| m.strip_suffix('}'))
            .unwrap_or(mapping);
        Probe {
            name: kind.to_string(),
            kind: kind.to_string(),
            fields: vec![inner.to_string()],
            settings: Vec::new(),
        }
    }

    pub fn http(url: &str) -> Probe {
        Probe::new("http", "url", &format!("\"{url}\""))
    }

    /// `query` is written in single quotes, as PromQL with `"` reads best.
    pub fn prometheus(url: &str, query: &str) -> Probe {
        Probe::new("prometheus", "url", url).with("query", &format!("'{query}'"))
    }

    /// A command probe; `argv` as a YAML list, e.g. `[sh, -c, "exit 1"]`.
    pub fn command(argv: &str) -> Probe {
        Probe::new("command", "run", argv)
    }

    /// Counts the fleet's running containers.
    pub fn running(fleet: &Fleet, n: usize) -> Probe {
        Probe::new(
            "docker",
            "labels",
            &format!("{{fltest.group: {}}}", fleet.group),
        )
        .with("running", &n.to_string())
    }

    pub fn named(mut self, name: &str) -> Probe {
        self.name = name.to_string();
        self
    }

    /// A field of the probe kind's mapping, value as YAML.
    pub fn with(mut self, key: &str, value: &str) -> Probe {
        self.fields.push(format!("{key}: {value}"));
        self
    }

    pub fn timeout(self, d: &str) -> Probe {
        self.with("timeout", d)
    }

    /// A setting of the probe itself (`min_success`, `retries`, `retry_interval`).
    pub fn setting(mut self, key: &str, value: &str) -> Probe {
        self.settings.push((key.into(), value.into()));
        self
    }

    pub fn min_success(self, ratio: f64) -> Probe {
        self.setting("min_success", &format!("{ratio:?}"))
    }

    fn render(&self, out: &mut String, indent: &str) {
        let _ = writeln!(out, "{indent}- name: {}", self.name);
        for (k, v) in &self.settings {
            let _ = writeln!(out, "{indent}  {k}: {v}");
        }
        let _ = writeln!(
            out,
            "{indent}  {}: {{{}}}",
            self.kind,
            self.fields.join(", ")
        );
    }
}

/// An experiment file, built fluently and rendered as YAML.
#[derive(Clone, Debug)]
pub struct Experiment {
    name: String,
    vars: Option<String>,
    docker: Vec<String>,
    select: Option<String>,
    /// Named targets (`targets:`): each name with its mapping as YAML flow text.
    named: Vec<(String, String)>,
    steady: Vec<Probe>,
    interval: Option<String>,
    abort_on_failure: bool,
    during: Vec<Probe>,
    faults: Vec<String>,
    recovery: Option<String>,
}

impl Experiment {
    pub fn new(name: &str) -> Experiment {
        Experiment {
            name: name.to_string(),
            vars: None,
            docker: Vec::new(),
            select: None,
            named: Vec::new(),
            steady: Vec::new(),
            interval: None,
            abort_on_failure: false,
            during: Vec::new(),
            faults: Vec::new(),
            recovery: None,
        }
    }

    /// `no-match`: one pause on a label no container carries (exit 3, `no_targets`).
    pub fn no_match() -> Experiment {
        Experiment::new("no-match")
            .on_nothing()
            .fault("pause: {duration: 1s}")
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Targets the fleet's containers (its `fltest.group` label).
    pub fn on(self, fleet: &Fleet) -> Experiment {
        self.on_label("fltest.group", &fleet.group)
    }

    /// Targets Docker containers carrying `key: value`.
    pub fn on_label(self, key: &str, value: &str) -> Experiment {
        self.docker(&format!("labels: {{{key}: {value}}}"))
    }

    /// Targets a label no container carries: the run ends with `no_targets`.
    pub fn on_nothing(self) -> Experiment {
        self.on_label("fltest.group", "surely-nobody-uses-this")
    }

    /// A field of the `docker:` selector, e.g. `host: "unix:///x.sock"`.
    pub fn docker(mut self, field: &str) -> Experiment {
        self.docker.push(field.to_string());
        self
    }

    /// A named target (`targets: {NAME: ...}`) with its mapping as YAML flow text, e.g.
    /// `docker: {labels: {app: api}}, select: {mode: all}`. With one, the experiment has
    /// `targets:` instead of `target:`.
    pub fn target(mut self, name: &str, mapping: &str) -> Experiment {
        self.named.push((name.to_string(), mapping.to_string()));
        self
    }

    /// A named target: the fleet's containers labelled `fltest.role: ROLE`, picked as
    /// `select` says (e.g. `{mode: all}`).
    pub fn target_on(self, name: &str, fleet: &Fleet, role: &str, select: &str) -> Experiment {
        let mapping = format!(
            "docker: {{labels: {{fltest.group: {}, fltest.role: {role}}}}}, select: {select}",
            fleet.group
        );
        self.target(name, &mapping)
    }

    /// Narrows the selector to the container named `name`.
    pub fn only(self, name: &str) -> Experiment {
        self.docker(&format!("name: {name}"))
    }

    /// `target.select`, e.g. `{mode: all}`.
    pub fn select(mut self, select: &str) -> Experiment {
        self.select = Some(select.to_string());
        self
    }

    pub fn vars(mut self, vars: &str) -> Experiment {
        self.vars = Some(vars.to_string());
        self
    }

    pub fn steady(mut self, probe: Probe) -> Experiment {
        self.steady.push(probe);
        self
    }

    /// A probe sampled during the faults, every `interval`.
    pub fn during(mut self, interval: &str, probe: Probe) -> Experiment {
        self.interval = Some(interval.to_string());
        self.during.push(probe);
        self
    }

    pub fn abort_on_failure(mut self) -> Experiment {
        self.abort_on_failure = true;
        self
    }

    /// One entry of `faults:`, e.g. `pause: {duration: 2s}`.
    pub fn fault(mut self, fault: &str) -> Experiment {
        self.faults.push(fault.to_string());
        self
    }

    pub fn recovery(mut self, timeout: &str, interval: &str) -> Experiment {
        self.recovery = Some(format!("{{timeout: {timeout}, interval: {interval}}}"));
        self
    }

    pub fn yaml(&self) -> String {
        let mut y = format!("version: 1\nname: {}\n", self.name);
        if let Some(v) = &self.vars {
            let _ = writeln!(y, "vars: {v}");
        }
        if self.named.is_empty() {
            let _ = writeln!(y, "target:\n  docker: {{{}}}", self.docker.join(", "));
            if let Some(s) = &self.select {
                let _ = writeln!(y, "  select: {s}");
            }
        } else {
            y.push_str("targets:\n");
            for (name, mapping) in &self.named {
                let _ = writeln!(y, "  {name}: {{{mapping}}}");
            }
        }
        if !self.steady.is_empty() {
            y.push_str("steady_state:\n");
            for p in &self.steady {
                p.render(&mut y, "  ");
            }
        }
        if let Some(interval) = &self.interval {
            let _ = writeln!(y, "during:\n  interval: {interval}");
            if self.abort_on_failure {
                y.push_str("  abort_on_failure: true\n");
            }
            y.push_str("  probes:\n");
            for p in &self.during {
                p.render(&mut y, "    ");
            }
        }
        y.push_str("faults:\n");
        for f in &self.faults {
            let _ = writeln!(y, "  - {f}");
        }
        if let Some(r) = &self.recovery {
            let _ = writeln!(y, "recovery: {r}");
        }
        y
    }

    /// Writes `NAME.yaml` into `dir`.
    pub fn write(&self, dir: &Path) -> PathBuf {
        super::write(dir, &format!("{}.yaml", self.name), &self.yaml())
    }
}

/// A game-day scenario over experiment files in the same directory.
pub fn scenario(name: &str, files: &[&str], continue_on_failure: bool) -> String {
    let mut y = format!("version: 1\nkind: scenario\nname: {name}\nexperiments:\n");
    for f in files {
        let _ = writeln!(y, "  - file: {f}");
    }
    if continue_on_failure {
        y.push_str("continue_on_failure: true\n");
    }
    y
}
