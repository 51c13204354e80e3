//! `network`: delay, jitter, loss and rate with `tc`, in the target's network namespace.
//!
//! Lessons from the peers, each a rule here: one qdisc per fault under a handle faultline
//! owns ([`HANDLE`]); the root qdisc is read before every change and a qdisc faultline did
//! not create is never replaced or deleted; `add`, never `replace`; a partial setup is
//! rolled back; revert deletes only the owned handle (the kernel checks the handle) and
//! confirms it is gone; the interface is a parameter, and revert uses the one injected on.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::net_scope::{self, Resolved};
use super::{FaultKind, Injected, Prepared, Undo, UndoRecord};
use crate::experiment::model::{
    FaultProblems, FaultSpec, NetworkEngine, NetworkFault, NetworkStrategy, Target as TargetSpec,
    fault_timing,
};
use crate::experiment::model::{NetDirection, NetScope, PartitionDirection};
use crate::platform::kubernetes::rbac::{self, Permission};
use crate::platform::{
    NetAccess, NetnsRequest, Peer, Placement, Platform, PlatformError, Target, host,
};

/// The root qdisc handle faultline owns. Documented: a qdisc with this handle is
/// faultline's; anything else is never touched.
pub const HANDLE: &str = "fa17:";
/// The child handle of a tbf under netem (when both delay/loss and rate are asked for).
pub const CHILD_HANDLE: &str = "fa18:";

/// What the kernel said when netem is missing.
pub(crate) const NETEM_MISSING: &str = "Specified qdisc kind is unknown";

/// The message for a kernel without netem: names the module and how to get it.
pub fn netem_missing_message() -> String {
    "this kernel has no netem qdisc (module `sch_netem`): delay, jitter and loss need it. \
     Load it with `modprobe sch_netem` (on Debian/Ubuntu it ships in `linux-modules-extra-$(uname -r)`), \
     or use `rate` alone, which works with tbf"
        .to_string()
}

/// What revert needs: where, on which interface, how faultline got in, and what it added
/// (its qdisc, and for the nfqueue engine the rule and delayer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QdiscRecord {
    pub interface: String,
    pub access: NetAccess,
    /// Whether faultline adds a qdisc (netem, or tbf for a rate).
    #[serde(default = "yes")]
    pub tc: bool,
    #[serde(default)]
    pub delayer: Option<super::nfqueue::DelayerRecord>,
    /// `engine: auto` where netem support is unknown until tried (Kubernetes): inject
    /// adds netem, and on a kernel without it ("Specified qdisc kind is unknown") runs
    /// the `delayer` instead. Revert removes whichever is there.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub netem_first: bool,
    /// The fault's scopes, resolved to addresses when it was prepared (the netem filters
    /// are built from them; the delayer's rules are in its record).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scope: Vec<Resolved>,
    /// The peers its scopes named (containers, hosts), with the addresses they had then.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<Peer>,
    /// A partition's DROP rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drops: Option<Box<DropRecord>>,
    /// Whether received packets are shaped on tc through faultline's IFB device
    /// ([`super::ifb`]): `direction: ingress` or `both` with netem or a `rate`. Then `tc`
    /// says whether the interface's own root qdisc (egress) is faultline's too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ifb: bool,
}

/// A partition's iptables DROP rules in the target's namespace, each carrying `marker`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropRecord {
    pub marker: String,
    /// Full rule specs (chain first), as after `-I`/`-D`.
    pub rules: Vec<Vec<String>>,
}

fn yes() -> bool {
    true
}

/// How delay, jitter and loss are applied, once `auto` is decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Netem,
    Nfqueue,
}

/// Whether the fault needs a qdisc with this engine: netem for delay/loss, tbf for rate.
pub fn needs_tc(f: &NetworkFault, engine: Engine) -> bool {
    f.rate.is_some() || (needs_netem(f) && engine == Engine::Netem)
}

/// Whether the fault needs netem (anything but a pure rate limit).
pub fn needs_netem(f: &NetworkFault) -> bool {
    f.delay.is_some()
        || f.jitter.is_some()
        || f.loss.is_some()
        || f.corrupt.is_some()
        || f.duplicate.is_some()
        || f.reorder.is_some()
        || f.dns.is_some()
}

fn ms(d: crate::experiment::units::Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// The tbf parameters for a rate: a burst of at least a few full frames (a burst below
/// the MTU would drop every large packet) and a bounded queue.
fn tbf_params(bits_per_second: u64) -> Vec<String> {
    let burst = (bits_per_second / 8 / 100).max(5_000);
    vec![
        "tbf".into(),
        "rate".into(),
        format!("{bits_per_second}bit"),
        "burst".into(),
        burst.to_string(),
        "latency".into(),
        "400ms".into(),
    ]
}

/// The netem parameters of the fault: `delay D [J]`, `loss P%`.
fn netem_params(f: &NetworkFault) -> Vec<String> {
    let mut netem: Vec<String> = vec!["netem".into()];
    if let Some(d) = f.delay {
        netem.extend(["delay".into(), ms(d)]);
        if let Some(j) = f.jitter {
            netem.push(ms(j));
        }
    }
    if let Some(l) = f.loss {
        netem.extend(["loss".into(), format!("{}%", l.0)]);
    }
    if let Some(c) = f.corrupt {
        netem.extend(["corrupt".into(), format!("{}%", c.0)]);
    }
    if let Some(d) = f.duplicate {
        netem.extend(["duplicate".into(), format!("{}%", d.0)]);
    }
    if let Some(r) = &f.reorder {
        netem.extend(["reorder".into(), format!("{}%", r.percent.0)]);
        if let Some(g) = r.gap {
            netem.extend(["gap".into(), g.to_string()]);
        }
    }
    netem
}

/// The band of faultline's `prio` root that scoped traffic is filtered into; the other
/// three bands keep the kernel's default priority map, untouched.
pub const SCOPED_BAND: &str = "fa17:4";

/// The `tc` argument lists that set the fault up, in order. With the nfqueue engine only
/// the rate goes to tc. With scopes: a `prio` root with four bands, the fault's qdisc(s)
/// on the fourth, and one `u32` filter per address, protocol and port block sending the
/// scoped packets there; everything else takes the default bands.
pub fn add_commands_scoped(
    f: &NetworkFault,
    engine: Engine,
    scopes: &[Resolved],
) -> Vec<Vec<String>> {
    if scopes.is_empty() {
        return add_commands(f, engine);
    }
    if !needs_tc(f, engine) {
        return Vec::new();
    }
    let dev = |verb: &str, mut v: Vec<String>| {
        let mut out: Vec<String> =
            vec![verb.into(), "add".into(), "dev".into(), f.interface.clone()];
        out.append(&mut v);
        out
    };
    let mut root: Vec<String> = ["root", "handle", HANDLE, "prio", "bands", "4", "priomap"]
        .map(String::from)
        .to_vec();
    root.extend(
        "1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1"
            .split(' ')
            .map(String::from),
    );
    let mut cmds = vec![dev("qdisc", root)];
    let netem = engine == Engine::Netem && needs_netem(f);
    if netem {
        let mut v: Vec<String> = vec![
            "parent".into(),
            SCOPED_BAND.into(),
            "handle".into(),
            CHILD_HANDLE.into(),
        ];
        v.extend(netem_params(f));
        cmds.push(dev("qdisc", v));
    }
    if let Some(rate) = &f.rate {
        let (parent, handle) = if netem {
            (format!("{CHILD_HANDLE}1"), "fa19:".to_string())
        } else {
            (SCOPED_BAND.to_string(), CHILD_HANDLE.to_string())
        };
        let mut v: Vec<String> = vec!["parent".into(), parent, "handle".into(), handle];
        v.extend(tbf_params(rate.bits_per_second));
        cmds.push(dev("qdisc", v));
    }
    for m in net_scope::u32_matches(scopes, net_scope::Chain::Output) {
        let mut v: Vec<String> = ["parent", HANDLE, "protocol", "ip", "prio", "1", "u32"]
            .map(String::from)
            .to_vec();
        v.extend(m);
        v.extend(["flowid".to_string(), SCOPED_BAND.to_string()]);
        cmds.push(dev("filter", v));
    }
    cmds
}

/// The `tc` argument lists that set the fault up, in order. With the nfqueue engine only
/// the rate goes to tc.
pub fn add_commands(f: &NetworkFault, engine: Engine) -> Vec<Vec<String>> {
    let dev = |mut v: Vec<String>| {
        let mut out: Vec<String> = vec![
            "qdisc".into(),
            "add".into(),
            "dev".into(),
            f.interface.clone(),
        ];
        out.append(&mut v);
        out
    };
    if !needs_netem(f) || engine == Engine::Nfqueue {
        let Some(rate) = f.rate.as_ref() else {
            return Vec::new();
        };
        let mut args = vec!["root".into(), "handle".into(), HANDLE.into()];
        args.extend(tbf_params(rate.bits_per_second));
        return vec![dev(args)];
    }
    let mut netem: Vec<String> = vec!["root".into(), "handle".into(), HANDLE.into()];
    netem.extend(netem_params(f));
    let mut cmds = vec![dev(netem)];
    if let Some(rate) = &f.rate {
        let mut tbf: Vec<String> = vec![
            "parent".into(),
            format!("{}1", HANDLE),
            "handle".into(),
            CHILD_HANDLE.into(),
        ];
        tbf.extend(tbf_params(rate.bits_per_second));
        cmds.push(dev(tbf));
    }
    cmds
}

pub fn show_command(interface: &str) -> Vec<String> {
    ["qdisc", "show", "dev", interface]
        .map(String::from)
        .to_vec()
}

/// Deletes faultline's root qdisc, and only it: the kernel refuses when the root's handle
/// differs from the one named.
pub fn delete_command(interface: &str) -> Vec<String> {
    ["qdisc", "del", "dev", interface, "root", "handle", HANDLE]
        .map(String::from)
        .to_vec()
}

/// The root qdisc as `tc qdisc show` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Root {
    /// The kernel's default (handle 0:).
    Default,
    /// faultline's own, from this or an earlier run.
    Ours,
    /// Someone else's: never replaced nor deleted.
    Foreign { kind: String, handle: String },
}

pub fn parse_root(show: &str) -> Root {
    for line in show.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() >= 3 && words[0] == "qdisc" && words.contains(&"root") {
            let (kind, handle) = (words[1], words[2]);
            // The kernel's own root qdiscs (noqueue, pfifo_fast, fq_codel, mq) have handle 0:.
            if handle == HANDLE {
                return Root::Ours;
            }
            if handle == "0:" {
                return Root::Default;
            }
            return Root::Foreign {
                kind: kind.into(),
                handle: handle.into(),
            };
        }
    }
    Root::Default
}

/// A scope as written, for plans: `172.17.0.0/16, containers web-b, tcp port 8080`.
pub fn describe_scope(s: &NetScope) -> String {
    let mut parts = Vec::new();
    if !s.cidrs.is_empty() {
        parts.push(s.cidrs.join(", "));
    }
    if let Some(c) = &s.containers {
        let mut sel: Vec<String> = c.names.clone();
        sel.extend(c.labels.iter().map(|(k, v)| format!("{k}={v}")));
        parts.push(format!("containers {}", sel.join(", ")));
    }
    if let Some(p) = &s.pods {
        match &p.namespace {
            Some(ns) => parts.push(format!("pods {} in {ns}", p.selector)),
            None => parts.push(format!("pods {}", p.selector)),
        }
    }
    if !s.hosts.is_empty() {
        parts.push(format!("hosts {}", s.hosts.join(", ")));
    }
    if let Some(p) = s.protocol {
        parts.push(p.name().to_string());
    }
    if !s.ports.is_empty() {
        let ports: Vec<String> = s
            .ports
            .iter()
            .map(|p| match p {
                crate::experiment::model::PortSpec::One(n) => n.to_string(),
                crate::experiment::model::PortSpec::Range(r) => r.clone(),
            })
            .collect();
        parts.push(format!("port {}", ports.join(", ")));
    }
    parts.join(", ")
}

fn tc_error(what: &str, out: &crate::platform::ExecOutput) -> String {
    let msg = out.stderr.trim();
    let msg = if msg.is_empty() {
        out.stdout.trim()
    } else {
        msg
    };
    format!("`tc {what}` failed (exit {}): {msg}", out.code)
}

async fn tc(
    platform: &dyn Platform,
    target: &Target,
    access: &NetAccess,
    args: &[String],
) -> Result<crate::platform::ExecOutput, PlatformError> {
    let mut argv = vec!["tc".to_string()];
    argv.extend(args.iter().cloned());
    platform.netns_exec(target, access, &argv).await
}

/// Reads the root and refuses anything but the kernel's default.
async fn check_root(
    platform: &dyn Platform,
    target: &Target,
    access: &NetAccess,
    interface: &str,
) -> Result<(), PlatformError> {
    let out = tc(platform, target, access, &show_command(interface)).await?;
    if out.code != 0 {
        return Err(PlatformError::Refused(tc_error(
            &format!("qdisc show dev {interface}"),
            &out,
        )));
    }
    match parse_root(&out.stdout) {
        Root::Default => Ok(()),
        Root::Ours => Err(PlatformError::Refused(format!(
            "`{}` already has faultline's qdisc ({HANDLE}) on {interface}, left by an earlier run: run `faultline recover`",
            target.name
        ))),
        Root::Foreign { kind, handle } => Err(PlatformError::Refused(format!(
            "`{}` already has a `{kind}` root qdisc ({handle}) on {interface} that faultline did not create; refusing to replace it",
            target.name
        ))),
    }
}

impl NetworkFault {
    /// The engine for delay, jitter, loss and their relatives once `auto` is decided: the
    /// nfqueue engine where the kernel has no netem, and for ingress (it needs no IFB
    /// device); DNS answers are read by the delayer only.
    fn engine_for(&self, has_netem: Option<bool>) -> Engine {
        let egress_only = self.direction == NetDirection::Egress;
        match self.engine {
            _ if self.dns.is_some() => Engine::Nfqueue,
            NetworkEngine::Netem => Engine::Netem,
            NetworkEngine::Nfqueue => Engine::Nfqueue,
            NetworkEngine::Auto
                if needs_netem(self) && (has_netem == Some(false) || !egress_only) =>
            {
                Engine::Nfqueue
            }
            NetworkEngine::Auto => Engine::Netem,
        }
    }

    /// The iptables chains the fault's rules go in.
    fn chains(&self) -> Vec<net_scope::Chain> {
        match (&self.partition, &self.dns) {
            (Some(p), _) => net_scope::partition_chains(p.direction),
            (None, Some(_)) => vec![net_scope::Chain::Input],
            (None, None) => net_scope::chains(self.direction),
        }
    }

    /// What a helper runs as it ends (faultline died): delete faultline's qdisc, the IFB
    /// device's redirect, and the rules carrying `markers`.
    fn on_exit(&self, ifb: bool, markers: &[&String], chains: &[String]) -> String {
        let mut on_exit = format!(
            "tc {} 2>/dev/null",
            delete_command(&self.interface).join(" ")
        );
        if ifb {
            on_exit.push_str(&format!(
                "; {}",
                super::ifb::shell_teardown(&self.interface)
            ));
        }
        for m in markers {
            on_exit.push_str(&format!(
                "; {}",
                super::nfqueue::delete_rules_script_in(m, chains)
            ));
        }
        on_exit
    }

    /// The impairment and scope fields that are set, as `` `key` `` for a message, but
    /// those named in `except`.
    fn set_fields(&self, except: &[&str]) -> Vec<String> {
        [
            (self.delay.is_some(), "delay"),
            (self.jitter.is_some(), "jitter"),
            (self.loss.is_some(), "loss"),
            (self.rate.is_some(), "rate"),
            (self.corrupt.is_some(), "corrupt"),
            (self.duplicate.is_some(), "duplicate"),
            (self.reorder.is_some(), "reorder"),
            (self.partition.is_some(), "partition"),
            (self.dns.is_some(), "dns"),
            (self.to.is_some(), "to"),
            (self.from.is_some(), "from"),
            (self.direction != NetDirection::Egress, "direction"),
        ]
        .into_iter()
        .filter(|(set, key)| *set && !except.contains(key))
        .map(|(_, key)| format!("`{key}`"))
        .collect()
    }
}

impl FaultSpec for NetworkFault {
    fault_timing!("network");

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(d) = self.delay {
            match self.jitter {
                Some(j) => parts.push(format!("delay {d} ± {j}")),
                None => parts.push(format!("delay {d}")),
            }
        }
        if let Some(l) = self.loss {
            parts.push(format!("loss {l}"));
        }
        if let Some(c) = self.corrupt {
            parts.push(format!("corrupt {c}"));
        }
        if let Some(d) = self.duplicate {
            parts.push(format!("duplicate {d}"));
        }
        if let Some(r) = &self.reorder {
            match r.gap {
                Some(g) => parts.push(format!("reorder {} (gap {g})", r.percent)),
                None => parts.push(format!("reorder {}", r.percent)),
            }
        }
        if let Some(r) = &self.rate {
            parts.push(format!("rate {r}"));
        }
        if let Some(d) = &self.dns {
            parts.push(format!(
                "dns {} for {} ({})",
                d.mode.name(),
                d.names.join(", "),
                d.percent
            ));
        }
        if let Some(p) = &self.partition {
            let dir = match p.direction {
                PartitionDirection::Both => "both ways",
                PartitionDirection::To => "from the target to them",
                PartitionDirection::From => "from them to the target",
            };
            parts.push(format!(
                "partition from {} (dropped {dir})",
                describe_scope(&p.with)
            ));
        }
        let mut scope = Vec::new();
        if let Some(t) = &self.to {
            scope.push(format!("to {}", describe_scope(t)));
        }
        if let Some(t) = &self.from {
            scope.push(format!("from {}", describe_scope(t)));
        }
        match self.direction {
            NetDirection::Egress => {}
            NetDirection::Ingress => scope.push("ingress".into()),
            NetDirection::Both => scope.push("both directions".into()),
        }
        let scope = if scope.is_empty() {
            String::new()
        } else {
            format!(" ({})", scope.join(", "))
        };
        format!(
            "network {}{scope} on {} for {}",
            parts.join(", "),
            self.interface,
            self.duration
        )
    }

    /// On Kubernetes, says how delay/loss are applied and what the helper image needs.
    fn describe_on(&self, target: &TargetSpec) -> String {
        let plain = self.describe();
        if target.kubernetes.is_none() || !needs_netem(self) {
            return plain;
        }
        let delayer = "`faultline delayer` in an ephemeral container and an iptables rule with --queue-bypass; the helper image needs `faultline`, `tc` and `iptables`";
        match self.engine {
            NetworkEngine::Netem => format!("{plain} (netem)"),
            NetworkEngine::Nfqueue => format!("{plain} (nfqueue engine: {delayer})"),
            NetworkEngine::Auto => format!(
                "{plain} (netem; where the node's kernel has none, the nfqueue engine: {delayer})"
            ),
        }
    }

    fn validate(&self, target: &TargetSpec, p: &mut FaultProblems) {
        p.positive("duration", self.duration);
        if target.kubernetes.is_some()
            && self.engine == NetworkEngine::Nfqueue
            && self.strategy == NetworkStrategy::Host
        {
            p.err_at(
                "strategy",
                format!(
                    "on Kubernetes the nfqueue engine runs its delayer in an ephemeral container: remove `strategy: host` (or use `sidecar`); it needs {NFQUEUE_IMAGE_NEEDS}"
                ),
            );
        }
        self.validate_partition(p);
        self.validate_dns(p);
        self.validate_packets(p);
        self.validate_scopes(target, p);
        self.validate_knobs(p);
    }
}

/// The parts of `validate`, in the order their problems are reported.
impl NetworkFault {
    /// A partition's peers, and nothing beside it; without one, something to do.
    fn validate_partition(&self, p: &mut FaultProblems) {
        if let Some(part) = &self.partition {
            net_scope::validate_scope("partition", &part.with, p);
            if part.with.cidrs.is_empty()
                && part.with.containers.is_none()
                && part.with.pods.is_none()
                && part.with.hosts.is_empty()
            {
                p.err_at(
                    "partition",
                    "`partition.with` names no peers: give `cidrs`, `containers`, `pods` or `hosts`",
                );
            }
            let others = self.set_fields(&["partition", "dns"]);
            if !others.is_empty() {
                p.err_at(
                    "partition",
                    format!(
                        "a partition drops everything between the target and its peers: remove {} (or use another network fault for them)",
                        others.join(", ")
                    ),
                );
            }
        } else if !needs_netem(self) && self.rate.is_none() {
            p.err("a network fault needs at least one of `delay`, `loss`, `rate` or `partition`");
        }
    }

    fn validate_dns(&self, p: &mut FaultProblems) {
        if let Some(d) = &self.dns {
            if d.names.is_empty() {
                p.err_at(
                    "dns",
                    "`dns.names` is empty: name the DNS names (globs) to fail",
                );
            }
            if self.engine == NetworkEngine::Netem {
                p.err_at(
                    "dns",
                    "`dns` runs on the nfqueue engine (it reads the answers): remove `engine: netem`",
                );
            }
            let others = self.set_fields(&["dns"]);
            if !others.is_empty() {
                p.err_at(
                    "dns",
                    format!(
                        "a `dns` fault acts on the answers of every name server the target asks: remove {} (or use another network fault for them)",
                        others.join(", ")
                    ),
                );
            }
        }
    }

    /// What acts on single packets: reorder, and corrupt/duplicate by direction.
    fn validate_packets(&self, p: &mut FaultProblems) {
        if let Some(r) = &self.reorder {
            if self.delay.is_none() {
                p.err_at(
                    "reorder",
                    "`reorder` sends some packets ahead of delayed ones: add a `delay`",
                );
            }
            if r.gap == Some(0) {
                p.err_at("reorder", "`reorder.gap` must be at least 1");
            }
        }
        if self.direction != NetDirection::Egress && self.engine != NetworkEngine::Netem {
            // The delayer rewrites and copies packets it sends; an incoming packet's
            // checksum is already verified, and a copy cannot be re-injected inward.
            for (set, key) in [
                (self.corrupt.is_some(), "corrupt"),
                (self.duplicate.is_some(), "duplicate"),
            ] {
                if set {
                    p.err_at(
                        key,
                        format!("`{key}` acts on the packets a target sends: use `direction: egress` (put the fault on the peer to reach this target's incoming packets)"),
                    );
                }
            }
        }
    }

    /// `to`, `from` and `partition.with`: peers named as the target's platform names them.
    fn validate_scopes(&self, target: &TargetSpec, p: &mut FaultProblems) {
        for (side, scope) in net_scope::declared(self) {
            let key = match (&self.partition, side) {
                (Some(_), _) => "partition",
                (None, net_scope::Side::To) => "to",
                (None, net_scope::Side::From) => "from",
            };
            if target.kubernetes.is_some() && scope.containers.is_some() {
                p.err_at(
                    key,
                    format!("`{key}.containers` names Docker containers: on Kubernetes name peer pods with `pods: {{selector: ...}}`"),
                );
            }
            if target.docker.is_some() && scope.pods.is_some() {
                p.err_at(
                    key,
                    format!("`{key}.pods` names Kubernetes pods: on Docker name peers with `containers: {{names: [...]}}` or `labels`"),
                );
            }
        }
        if let Some(t) = &self.to {
            net_scope::validate_scope("to", t, p);
        }
        if let Some(t) = &self.from {
            net_scope::validate_scope("from", t, p);
        }
    }

    /// Jitter against delay, the interface name, and `tc_image` against the strategy.
    fn validate_knobs(&self, p: &mut FaultProblems) {
        if self.jitter.is_some() && self.delay.is_none() {
            p.err_at("jitter", "`jitter` varies a `delay`: add `delay` too");
        }
        if let (Some(d), Some(j)) = (self.delay, self.jitter) {
            if j > d {
                p.err_at("jitter", format!("jitter {j} is larger than the delay {d}"));
            }
        }
        let iface_ok = !self.interface.is_empty()
            && self.interface.len() <= 15
            && !self.interface.contains(['/', ' ', ':']);
        if !iface_ok {
            p.err_at(
                "interface",
                format!(
                    "invalid interface name `{}`: at most 15 characters, no `/`, `:` or spaces",
                    self.interface
                ),
            );
        }
        if self.tc_image.is_some() && self.strategy == NetworkStrategy::Host {
            p.err_at(
                "tc_image",
                "`tc_image` is used by the sidecar strategy; with `strategy: host` the host's tc runs",
            );
        }
    }
}

#[async_trait]
impl FaultKind for NetworkFault {
    async fn preflight(&self, platform: &dyn Platform) -> Result<(), String> {
        if !needs_netem(self) {
            return Ok(());
        }
        let has_netem = platform.netem_supported().await;
        // Kubernetes runs the delayer in an ephemeral container beside the pod.
        let beside = platform.in_target_from_helper_image();
        match self.engine {
            NetworkEngine::Netem if has_netem == Some(false) => Err(netem_missing_message()),
            NetworkEngine::Auto
                if has_netem == Some(false)
                    && self.strategy == NetworkStrategy::Sidecar
                    && !beside =>
            {
                Err(format!(
                    "{}; the nfqueue engine, which works without it, needs `strategy: host`",
                    netem_missing_message()
                ))
            }
            NetworkEngine::Nfqueue if self.strategy == NetworkStrategy::Sidecar && !beside => Err(
                "the nfqueue engine runs its delayer from the host: use `strategy: host` (or auto)"
                    .into(),
            ),
            NetworkEngine::Nfqueue if beside && self.strategy == NetworkStrategy::Host => {
                Err(format!(
                    "the nfqueue engine on {} runs its delayer in an ephemeral container: use `strategy: sidecar` (or auto), with {NFQUEUE_IMAGE_NEEDS}",
                    platform.kind()
                ))
            }
            _ => Ok(()),
        }
    }

    async fn prepare(&self, platform: &dyn Platform, target: &Target) -> Prepared {
        let has_netem = platform.netem_supported().await;
        let egress_only = self.direction == NetDirection::Egress;
        let engine = self.engine_for(has_netem);
        // Where faultline cannot reach the target from the host but a helper image runs
        // beside it (Kubernetes), the delayer runs there; else from the host.
        let beside =
            platform.in_target_from_helper_image() && platform.host_reach(target).await.is_err();
        let nfq = engine == Engine::Nfqueue && needs_netem(self);
        // Netem unknown until tried: have the delayer ready in case the kernel lacks it.
        let netem_first = self.engine == NetworkEngine::Auto
            && needs_netem(self)
            && has_netem.is_none()
            && egress_only
            && self.dns.is_none()
            && beside;
        let partition = self.partition.is_some();
        // The delayer runs from the host, so nfqueue means host access there.
        let strategy = if nfq && !beside {
            NetworkStrategy::Host
        } else {
            self.strategy
        };
        let marker = (nfq || netem_first)
            .then(|| format!("faultline-delayer-{:016x}", rand::random::<u64>()));
        let drop_marker =
            partition.then(|| format!("faultline-partition-{:016x}", rand::random::<u64>()));
        let chains = self.chains();
        let chain_names: Vec<String> = chains.iter().map(|c| c.name().to_string()).collect();
        // tc shapes what an interface sends; what the target receives goes through an
        // IFB device (netem or a rate with `direction: ingress` or `both`).
        let tc = needs_tc(self, engine);
        let ifb = tc && self.direction != NetDirection::Egress && self.partition.is_none();
        // A helper beside the target takes the rules with it too when it ends.
        let markers: Vec<&String> = match beside {
            true => marker.iter().chain(drop_marker.iter()).collect(),
            false => Vec::new(),
        };
        let on_exit = self.on_exit(ifb, &markers, &chain_names);
        let access = platform
            .enter_netns(
                target,
                &NetnsRequest {
                    strategy,
                    image: self.tc_image.as_deref(),
                    lifetime: super::helper_lifetime(self.duration.std()),
                    on_exit,
                },
            )
            .await?;
        // Peers and hosts are resolved now, and the addresses journaled with the rules.
        let resolved =
            net_scope::resolve(platform, target, &access, &net_scope::declared(self)).await;
        let (scope, peers) = or_leave(platform, &access, resolved).await?;
        let matches = if self.dns.is_some() {
            vec![super::dns::answer_matches()]
        } else {
            net_scope::iptables_matches(&scope, &chains, &self.interface)
        };
        let delayer = match marker {
            Some(marker) => {
                let rec = delayer_record(
                    platform,
                    target,
                    &access,
                    beside,
                    marker,
                    &matches,
                    &self.interface,
                )
                .await;
                Some(or_leave(platform, &access, rec).await?)
            }
            None => None,
        };
        let drops = drop_marker.map(|marker| {
            Box::new(DropRecord {
                rules: matches
                    .iter()
                    .map(|m| super::nfqueue::with_comment(m, &marker, &["-j", "DROP"]))
                    .collect(),
                marker,
            })
        });
        Ok(Some(Undo::new(UndoRecord::RemoveQdisc {
            target: target.clone(),
            qdisc: QdiscRecord {
                interface: self.interface.clone(),
                access,
                tc: tc && (self.direction != NetDirection::Ingress || self.partition.is_some()),
                ifb,
                delayer,
                netem_first,
                scope,
                peers,
                drops,
            },
        })))
    }

    async fn inject(&self, platform: &dyn Platform, target: &Target, u: Option<&Undo>) -> Injected {
        let qdisc = super::undo_part!(u, RemoveQdisc { qdisc }, self);
        inject(platform, self, target, qdisc).await
    }

    async fn plan_notes(&self, platform: &dyn Platform, targets: &[Target]) -> Vec<String> {
        let mut notes = Vec::new();
        let on_tc = self.rate.is_some() || self.engine == NetworkEngine::Netem;
        if self.direction != NetDirection::Egress && self.partition.is_none() && on_tc {
            notes.push(format!(
                "received packets are shaped on tc through faultline's IFB device `{}` in the target's namespace (an ingress qdisc on {} redirects them there)",
                super::ifb::DEVICE,
                self.interface
            ));
        }
        for (side, scope) in net_scope::declared(self) {
            let key = match (&self.partition, side) {
                (Some(_), _) => "partition.with",
                (None, net_scope::Side::To) => "to",
                (None, net_scope::Side::From) => "from",
            };
            if let Some(sel) = &scope.containers {
                match platform.peers(sel).await {
                    Ok(peers) if peers.is_empty() => notes.push(format!(
                        "`{key}.containers` match no running container now: the run would stop"
                    )),
                    Ok(peers) => notes.push(format!(
                        "`{key}.containers` resolve now to {}",
                        describe_peers(&peers)
                    )),
                    Err(e) => notes.push(format!("`{key}.containers` cannot be resolved: {e}")),
                }
            }
            if !scope.hosts.is_empty() {
                for t in targets {
                    let said = if platform.host_reach(t).await.is_ok() {
                        match super::resolve::resolve_in_target(
                            platform,
                            t,
                            &NetAccess::Host,
                            &scope.hosts,
                        )
                        .await
                        {
                            Ok(peers) => format!("resolve now to {}", describe_peers(&peers)),
                            Err(e) => format!("cannot be resolved: {e}"),
                        }
                    } else if platform.in_target_from_helper_image() {
                        format!(
                            "are resolved when the fault is injected, by `{}` in the network helper (the pod's own /etc/hosts and resolv.conf); the report lists the addresses",
                            super::resolve::GETENT_SHOWN
                        )
                    } else {
                        "are resolved when the fault is injected".to_string()
                    };
                    notes.push(format!("`{key}.hosts` in `{}` {said}", t.name));
                }
            }
        }
        notes
    }

    async fn inject_reporting(
        &self,
        platform: &dyn Platform,
        target: &Target,
        undo: Option<&Undo>,
    ) -> Result<Option<super::FaultEffects>, PlatformError> {
        self.inject(platform, target, undo).await?;
        let Some(UndoRecord::RemoveQdisc { qdisc, .. }) = undo.map(|u| &u.record) else {
            return Ok(None);
        };
        Ok(scope_effects(self, qdisc))
    }

    fn kubernetes_note(&self) -> Option<&'static str> {
        Some(
            "# network adds an ephemeral container running as root with NET_ADMIN to the target\n\
             # pod: the namespace's Pod Security level must be `privileged`.\n",
        )
    }

    fn rbac(&self) -> &'static [Permission] {
        // Peer pods are resolved to their IPs through the API: listing pods.
        if net_scope::declared(self)
            .iter()
            .any(|(_, s)| s.pods.is_some())
        {
            return rbac::EPHEMERAL_HELPERS_AND_PEERS;
        }
        rbac::EPHEMERAL_HELPERS
    }
}

/// `web-b (172.18.0.3), web-c (172.18.0.4)`.
fn describe_peers(peers: &[Peer]) -> String {
    peers
        .iter()
        .map(|p| {
            let a: Vec<String> = p.addresses.iter().map(ToString::to_string).collect();
            format!("{} ({})", p.name, a.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the report says of a scoped fault: the packets it touched, addresses resolved,
/// and the peers named; `None` for a fault on the whole interface.
pub fn scope_effects(f: &NetworkFault, rec: &QdiscRecord) -> Option<super::FaultEffects> {
    if rec.scope.is_empty() {
        return None;
    }
    let dir = match (&f.partition, f.direction) {
        (Some(p), _) => match p.direction {
            PartitionDirection::Both => " (both ways)",
            PartitionDirection::To => " (target to peers)",
            PartitionDirection::From => " (peers to target)",
        },
        (None, NetDirection::Egress) => " (egress)",
        (None, NetDirection::Ingress) => " (ingress)",
        (None, NetDirection::Both) => " (egress and ingress)",
    };
    Some(super::FaultEffects {
        scope: rec
            .scope
            .iter()
            .map(|s| format!("{}{dir}", s.describe()))
            .collect(),
        peers: rec
            .peers
            .iter()
            .map(|p| crate::report::PeerRef {
                name: p.name.clone(),
                addresses: p.addresses.iter().map(ToString::to_string).collect(),
            })
            .collect(),
        ..Default::default()
    })
}

/// What the nfqueue engine needs beside a pod, said by preflight and errors.
pub const NFQUEUE_IMAGE_NEEDS: &str = "a helper image with `faultline`, `tc` and `iptables` (`tc_image`, --tc-image or FAULTLINE_TC_IMAGE; build the `helper` target of deploy/Dockerfile)";

fn prio_missing_message(target: &Target) -> String {
    format!(
        "the kernel of `{}` has no prio qdisc (module `sch_prio`): a scoped fault on tc (netem, or a `rate`) needs it; load it with `modprobe sch_prio`, or leave the scope out (a scoped delay, jitter or loss works on `engine: nfqueue`)",
        target.name
    )
}

/// Why adding the qdisc failed.
enum AddError {
    NetemMissing,
    /// A scope needs the prio qdisc, and the kernel has none.
    PrioMissing,
    Other(PlatformError),
}

impl From<PlatformError> for AddError {
    fn from(e: PlatformError) -> Self {
        AddError::Other(e)
    }
}

/// Checks the root and adds the fault's qdisc(s) for `engine`; a failure part-way removes
/// what was added.
async fn add_qdisc(
    platform: &dyn Platform,
    f: &NetworkFault,
    target: &Target,
    access: &NetAccess,
    engine: Engine,
    scope: &[Resolved],
) -> Result<(), AddError> {
    check_root(platform, target, access, &f.interface).await?;
    let cmds = add_commands_scoped(f, engine, scope);
    for (i, args) in cmds.iter().enumerate() {
        let out = tc(platform, target, access, args).await?;
        if out.code != 0 {
            if i > 0 {
                let _ = tc(platform, target, access, &delete_command(&f.interface)).await;
            }
            if out.stderr.contains(NETEM_MISSING) && !scope.is_empty() && i == 0 {
                return Err(AddError::PrioMissing);
            }
            if out.stderr.contains(NETEM_MISSING) && needs_netem(f) && engine == Engine::Netem {
                return Err(AddError::NetemMissing);
            }
            return Err(AddError::Other(PlatformError::Refused(tc_error(
                &args[..3].join(" "),
                &out,
            ))));
        }
    }
    Ok(())
}

/// Shapes what the target receives: the fault's qdisc(s) for `engine` on faultline's IFB
/// device, the packets in scope redirected to it.
async fn add_ifb(
    platform: &dyn Platform,
    f: &NetworkFault,
    target: &Target,
    rec: &QdiscRecord,
    engine: Engine,
) -> Result<(), PlatformError> {
    let on_device = NetworkFault {
        interface: super::ifb::DEVICE.to_string(),
        ..f.clone()
    };
    let qdiscs = add_commands(&on_device, engine);
    super::ifb::add(
        platform,
        target,
        &rec.access,
        &f.interface,
        &qdiscs,
        &rec.scope,
    )
    .await
}

/// Adds the fault: its qdisc and, with the nfqueue engine, the delayer and its rule. A
/// failure part-way removes what was added.
async fn inject(
    platform: &dyn Platform,
    f: &NetworkFault,
    target: &Target,
    rec: &QdiscRecord,
) -> Result<(), PlatformError> {
    let access = &rec.access;
    if let Some(d) = &rec.drops {
        return add_drops(platform, target, access, d).await;
    }
    let mut engine = if rec.delayer.is_some() && !rec.netem_first {
        Engine::Nfqueue
    } else {
        Engine::Netem
    };
    let mut added = false;
    if rec.tc {
        match add_qdisc(platform, f, target, access, engine, &rec.scope).await {
            Ok(()) => added = true,
            Err(AddError::NetemMissing | AddError::PrioMissing)
                if rec.netem_first && rec.delayer.is_some() =>
            {
                tracing::info!(
                    "the kernel of `{}` has no netem: delay, jitter and loss run on the nfqueue engine",
                    target.name
                );
                engine = Engine::Nfqueue;
                if needs_tc(f, engine) {
                    match add_qdisc(platform, f, target, access, engine, &rec.scope).await {
                        Ok(()) => added = true,
                        Err(AddError::Other(e)) => return Err(e),
                        Err(AddError::NetemMissing) => {
                            return Err(PlatformError::Refused(netem_missing_message()));
                        }
                        Err(AddError::PrioMissing) => {
                            return Err(PlatformError::Refused(prio_missing_message(target)));
                        }
                    }
                }
            }
            Err(AddError::NetemMissing) => {
                return Err(PlatformError::Refused(netem_missing_message()));
            }
            Err(AddError::PrioMissing) => {
                return Err(PlatformError::Refused(prio_missing_message(target)));
            }
            Err(AddError::Other(e)) => return Err(e),
        }
    }
    if rec.ifb {
        if let Err(e) = add_ifb(platform, f, target, rec, engine).await {
            if added {
                let _ = tc(platform, target, access, &delete_command(&f.interface)).await;
            }
            return Err(e);
        }
    }
    if engine == Engine::Nfqueue {
        if let Some(d) = &rec.delayer {
            if let Err(e) = start_nfqueue(platform, f, target, access, d).await {
                let _ = stop_nfqueue(platform, target, access, d).await;
                if added {
                    let _ = tc(platform, target, access, &delete_command(&f.interface)).await;
                }
                if rec.ifb {
                    let _ = super::ifb::remove(platform, target, access, &f.interface).await;
                }
                // Say why the nfqueue engine ran at all.
                return Err(match e {
                    PlatformError::Refused(m) if rec.netem_first => {
                        PlatformError::Refused(format!(
                            "the kernel of `{}` has no netem, and the nfqueue engine that replaces it failed: {m}",
                            target.name
                        ))
                    }
                    other => other,
                });
            }
        }
    }
    Ok(())
}

async fn start_nfqueue(
    platform: &dyn Platform,
    f: &NetworkFault,
    target: &Target,
    access: &NetAccess,
    d: &super::nfqueue::DelayerRecord,
) -> Result<(), PlatformError> {
    let shape = super::nfqueue::Shape {
        delay: f
            .delay
            .map(super::super::experiment::units::Duration::std)
            .unwrap_or_default(),
        jitter: f
            .jitter
            .map(super::super::experiment::units::Duration::std)
            .unwrap_or_default(),
        loss: f.loss.map(|l| l.0 / 100.0).unwrap_or(0.0),
        corrupt: f.corrupt.map(|l| l.0 / 100.0).unwrap_or(0.0),
        duplicate: f.duplicate.map(|l| l.0 / 100.0).unwrap_or(0.0),
        reorder: f
            .reorder
            .as_ref()
            .map(|r| r.percent.0 / 100.0)
            .unwrap_or(0.0),
        gap: f.reorder.as_ref().and_then(|r| r.gap).unwrap_or(0),
    };
    // The rule matches packets leaving through the fault's interface only: one the
    // target does not have would match nothing, and the fault would pass while doing
    // nothing. (`rate` is refused the same way, by tc.)
    let link = ["ip", "link", "show", "dev", &f.interface].map(String::from);
    let shown = platform.netns_exec(target, access, &link).await?;
    if shown.code != 0 {
        return Err(PlatformError::Refused(format!(
            "`{}` has no network interface `{}`: name one it has (`ip link` in the container), e.g. eth0",
            target.name, f.interface
        )));
    }
    let mut extra = Vec::new();
    if let Some(dns) = &f.dns {
        for n in &dns.names {
            extra.extend(["--dns-name".to_string(), n.to_ascii_lowercase()]);
        }
        extra.extend([
            "--dns-mode".to_string(),
            dns.mode.name().to_string(),
            "--dns-percent".to_string(),
            (dns.percent.0 / 100.0).to_string(),
        ]);
    }
    start_delayer(platform, target, access, d, shape, f.duration.std(), extra).await?;
    for spec in d.specs() {
        let out = platform
            .netns_exec(target, access, &super::nfqueue::iptables("-I", &spec))
            .await?;
        if out.code == 0 {
            continue;
        }
        let needs = match d.placement {
            Placement::Host { .. } => {
                "the nfqueue engine needs iptables on the host and the xt_NFQUEUE module".into()
            }
            Placement::InTarget { .. } | Placement::InContainer => format!(
                "the nfqueue engine needs {NFQUEUE_IMAGE_NEEDS}, and the xt_NFQUEUE module on the node"
            ),
        };
        return Err(PlatformError::Refused(format!(
            "cannot add the NFQUEUE rule `{}`: {} ({needs})",
            spec.join(" "),
            out.stderr.trim()
        )));
    }
    Ok(())
}

/// Adds a partition's DROP rules; a failure part-way removes those added.
async fn add_drops(
    platform: &dyn Platform,
    target: &Target,
    access: &NetAccess,
    d: &DropRecord,
) -> Result<(), PlatformError> {
    for spec in &d.rules {
        let out = platform
            .netns_exec(target, access, &super::nfqueue::iptables("-I", spec))
            .await?;
        if out.code != 0 {
            let _ = remove_rules(platform, target, access, &d.marker, &d.rules).await;
            return Err(PlatformError::Refused(format!(
                "cannot add the partition's rule `{}` in `{}`: {} (a partition needs iptables in the target's namespace)",
                spec.join(" "),
                target.name,
                out.stderr.trim()
            )));
        }
    }
    Ok(())
}

/// Whether any rule in `chains` carries `marker`.
async fn marked_rules_left(
    platform: &dyn Platform,
    target: &Target,
    access: &NetAccess,
    chains: &[String],
    marker: &str,
) -> Result<bool, PlatformError> {
    for c in chains {
        let rules = platform
            .netns_exec(target, access, &super::nfqueue::list_rules_in(c))
            .await?;
        if rules.stdout.contains(marker) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Deletes the rules (each exactly as added) until none carrying `marker` is left, and
/// confirms it.
async fn remove_rules(
    platform: &dyn Platform,
    target: &Target,
    access: &NetAccess,
    marker: &str,
    specs: &[Vec<String>],
) -> Result<(), PlatformError> {
    let chains = super::nfqueue::chains_of(specs);
    for _ in 0..5 {
        if !marked_rules_left(platform, target, access, &chains, marker).await? {
            break;
        }
        for spec in specs {
            platform
                .netns_exec(target, access, &super::nfqueue::iptables("-D", spec))
                .await?;
        }
    }
    if marked_rules_left(platform, target, access, &chains, marker).await? {
        return Err(PlatformError::Refused(format!(
            "faultline's iptables rules ({marker}) are still in `{}` after delete",
            target.name
        )));
    }
    Ok(())
}

/// Removes the rule (by its marker) and stops the delayer, and confirms both are gone.
async fn stop_nfqueue(
    platform: &dyn Platform,
    target: &Target,
    access: &NetAccess,
    d: &super::nfqueue::DelayerRecord,
) -> Result<(), PlatformError> {
    // Deleting first: with the rule gone no packet waits for the delayer any more.
    remove_rules(platform, target, access, &d.marker, &d.specs()).await?;
    // SIGTERM first: the delayer lets the packets it holds go.
    platform
        .stop_process(target, d.placement.clone(), &d.marker, true)
        .await
}

/// The delayer runs on the host inside the target's network namespace (Docker).
/// The delayer's record: a queue no one in the namespace has bound, its rules (one per
/// match), and where it runs (beside the target in its helper, or from the host).
async fn delayer_record(
    platform: &dyn Platform,
    target: &Target,
    access: &NetAccess,
    beside: bool,
    marker: String,
    matches: &[Vec<String>],
    interface: &str,
) -> Result<super::nfqueue::DelayerRecord, PlatformError> {
    let cat = ["cat", "/proc/net/netfilter/nfnetlink_queue"].map(String::from);
    let listing = platform.netns_exec(target, access, &cat).await?;
    let placement = match (access, beside) {
        (NetAccess::Sidecar { image, .. }, true) => Placement::InTarget {
            net_admin: true,
            image: Some(image.clone()),
        },
        _ => host_placement(),
    };
    let queue = super::nfqueue::pick_queue(&super::nfqueue::bound_queues(&listing.stdout));
    let target_args = super::nfqueue::queue_target(queue);
    let target_args: Vec<&str> = target_args.iter().map(String::as_str).collect();
    Ok(super::nfqueue::DelayerRecord {
        queue,
        rules: matches
            .iter()
            .map(|m| super::nfqueue::with_comment(m, &marker, &target_args))
            .collect(),
        marker,
        placement,
        interface: Some(interface.to_string()),
    })
}

pub fn host_placement() -> Placement {
    Placement::Host {
        netns: true,
        cgroups: false,
    }
}

/// Starts the nfqueue delayer for the record's queue inside the target's network
/// namespace, and waits until it has bound its queue; it ends by itself after
/// `duration` (plus a margin) and when faultline dies. From the host it is faultline's
/// own binary; beside a pod, `faultline delayer` from the helper image.
async fn start_delayer(
    platform: &dyn Platform,
    target: &Target,
    access: &NetAccess,
    d: &super::nfqueue::DelayerRecord,
    shape: super::nfqueue::Shape,
    duration: std::time::Duration,
    extra: Vec<String>,
) -> Result<(), PlatformError> {
    let on_host = matches!(d.placement, Placement::Host { .. });
    if on_host && *access != NetAccess::Host {
        return Err(PlatformError::Refused(
            "the nfqueue delayer runs from the host: use `strategy: host`".into(),
        ));
    }
    let lifetime = duration + super::cpu_stress::DEADLINE_MARGIN;
    let mut args = if on_host {
        Vec::new()
    } else {
        vec!["faultline".to_string()]
    };
    args.extend(delayer_args(d, shape, host::deadline(lifetime)));
    args.extend(extra);
    platform
        .start_process(target, d.placement.clone(), &args, &d.marker, lifetime)
        .await?;
    // The rule goes in only once the delayer listens, though --queue-bypass would let
    // packets through meanwhile anyway. Beside a pod its container was seen running; the
    // kernel's own listing, read in the namespace, says when it has bound.
    let cat = ["cat", "/proc/net/netfilter/nfnetlink_queue"].map(String::from);
    let (tries, pause) = if on_host { (100, 30) } else { (100, 50) };
    for _ in 0..tries {
        let listing = platform.netns_exec(target, access, &cat).await?;
        if super::nfqueue::bound_queues(&listing.stdout).contains(&d.queue) {
            return Ok(());
        }
        if on_host && host::pids_with_marker(&d.marker).is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
    }
    Err(PlatformError::Refused(
        "the nfqueue delayer did not bind its queue (the kernel needs nfnetlink_queue)".into(),
    ))
}

/// The arguments of `faultline delayer` for a record and shape, until epoch second `until`.
pub fn delayer_args(
    d: &super::nfqueue::DelayerRecord,
    shape: super::nfqueue::Shape,
    until: u64,
) -> Vec<String> {
    let mut v = vec![
        "delayer".to_string(),
        "--queue".into(),
        d.queue.to_string(),
        "--delay-us".into(),
        shape.delay.as_micros().to_string(),
        "--jitter-us".into(),
        shape.jitter.as_micros().to_string(),
        "--loss".into(),
        shape.loss.to_string(),
    ];
    // Only what is asked for, so that the command of a plain delay stays as it was.
    for (flag, value) in [
        ("--corrupt", shape.corrupt),
        ("--duplicate", shape.duplicate),
        ("--reorder", shape.reorder),
    ] {
        if value > 0.0 {
            v.extend([flag.to_string(), value.to_string()]);
        }
    }
    if shape.gap > 0 {
        v.extend(["--reorder-gap".to_string(), shape.gap.to_string()]);
    }
    v.extend([
        "--until".into(),
        until.to_string(),
        "--marker".into(),
        d.marker.clone(),
    ]);
    v
}

/// Removes what the fault added and confirms it is gone; then the way in (a helper)
/// goes too.
pub async fn revert(
    platform: &dyn Platform,
    target: &Target,
    rec: &QdiscRecord,
) -> Result<(), PlatformError> {
    let removed = remove(platform, target, rec).await;
    // The helper goes only once the qdisc is confirmed gone: it is the way in.
    if removed.is_ok() || matches!(removed, Err(PlatformError::Gone(_))) {
        platform.leave_netns(&rec.access).await?;
    }
    removed
}

/// Gives back the way in that `prepare` opened when the fault was not applied.
pub async fn release(platform: &dyn Platform, rec: &QdiscRecord) -> Result<(), PlatformError> {
    platform.leave_netns(&rec.access).await
}

/// Deletes faultline's qdisc if it is there, and confirms it is gone.
async fn remove(
    platform: &dyn Platform,
    target: &Target,
    rec: &QdiscRecord,
) -> Result<(), PlatformError> {
    let show = show_command(&rec.interface);
    if let Some(d) = &rec.drops {
        remove_rules(platform, target, &rec.access, &d.marker, &d.rules).await?;
    }
    if let Some(d) = &rec.delayer {
        // With netem first, a netem qdisc of faultline's means the delayer never ran.
        let netem_won = rec.netem_first && {
            let before = tc(platform, target, &rec.access, &show).await?;
            parse_root(&before.stdout) == Root::Ours && before.stdout.contains(" netem ")
        };
        if !netem_won {
            stop_nfqueue(platform, target, &rec.access, d).await?;
        }
    }
    if rec.ifb {
        super::ifb::remove(platform, target, &rec.access, &rec.interface).await?;
    }
    if !rec.tc {
        return Ok(());
    }
    let before = tc(platform, target, &rec.access, &show).await?;
    if parse_root(&before.stdout) == Root::Ours {
        let out = tc(
            platform,
            target,
            &rec.access,
            &delete_command(&rec.interface),
        )
        .await?;
        if out.code != 0 {
            return Err(PlatformError::Refused(tc_error("qdisc del", &out)));
        }
    }
    let after = tc(platform, target, &rec.access, &show).await?;
    if after.stdout.contains(HANDLE) {
        return Err(PlatformError::Refused(format!(
            "faultline's qdisc is still on {} of `{}` after delete",
            rec.interface, target.name
        )));
    }
    Ok(())
}

/// `r`, or its error after leaving the network namespace entered to prepare it.
async fn or_leave<T>(
    platform: &dyn Platform,
    access: &NetAccess,
    r: Result<T, PlatformError>,
) -> Result<T, PlatformError> {
    if r.is_err() {
        let _ = platform.leave_netns(access).await;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::units::{Duration, Percent};

    fn fault(
        delay: Option<u64>,
        jitter: Option<u64>,
        loss: Option<f64>,
        rate: Option<&str>,
    ) -> NetworkFault {
        NetworkFault {
            target: None,
            after: Duration::default(),
            duration: Duration::from_secs(10),
            delay: delay.map(Duration::from_millis),
            jitter: jitter.map(Duration::from_millis),
            loss: loss.map(Percent),
            rate: rate.map(|r| r.parse().unwrap()),
            corrupt: None,
            duplicate: None,
            reorder: None,
            interface: "eth0".into(),
            engine: Default::default(),
            strategy: Default::default(),
            tc_image: None,
            to: None,
            from: None,
            direction: Default::default(),
            partition: None,
            dns: None,
        }
    }

    /// A Kubernetes target spec and a Docker one.
    fn specs() -> (TargetSpec, TargetSpec) {
        use crate::test_support::from_json;
        (
            from_json(
                serde_json::json!({"kubernetes": {"namespace": "shop", "selector": "app=api"}}),
            ),
            from_json(serde_json::json!({"docker": {"labels": {"app": "web"}}})),
        )
    }

    fn add_commands_netem(f: &NetworkFault) -> Vec<Vec<String>> {
        add_commands(f, Engine::Netem)
    }

    #[tokio::test]
    async fn the_plan_says_when_received_packets_go_through_the_ifb_device() {
        let platform = crate::platform::fake::Fake::default();
        let targets = [crate::platform::fake::target("a")];
        let mut f = fault(None, None, None, Some("1mbit"));
        assert!(f.plan_notes(&platform, &targets).await.is_empty());
        f.direction = NetDirection::Both;
        let notes = f.plan_notes(&platform, &targets).await;
        assert_eq!(
            notes,
            [
                "received packets are shaped on tc through faultline's IFB device `ifb-fa17` in the target's namespace (an ingress qdisc on eth0 redirects them there)"
            ]
        );
        // Delay on ingress with `engine: auto` runs on the nfqueue engine: no IFB device.
        let mut d = fault(Some(100), None, None, None);
        d.direction = NetDirection::Ingress;
        assert!(d.plan_notes(&platform, &targets).await.is_empty());
        d.engine = NetworkEngine::Netem;
        assert_eq!(d.plan_notes(&platform, &targets).await.len(), 1);
    }

    #[test]
    fn on_kubernetes_the_plan_says_what_the_nfqueue_engine_needs() {
        let (k8s, docker) = specs();
        let mut f = fault(Some(100), None, None, None);
        assert_eq!(
            f.describe_on(&docker),
            "network delay 100ms on eth0 for 10s"
        );
        assert_eq!(
            f.describe_on(&k8s),
            "network delay 100ms on eth0 for 10s (netem; where the node's kernel has none, the nfqueue engine: `faultline delayer` in an ephemeral container and an iptables rule with --queue-bypass; the helper image needs `faultline`, `tc` and `iptables`)"
        );
        f.engine = NetworkEngine::Nfqueue;
        assert!(
            f.describe_on(&k8s)
                .contains("(nfqueue engine: `faultline delayer`")
        );
        let rate_only = fault(None, None, None, Some("1mbit"));
        assert_eq!(rate_only.describe_on(&k8s), rate_only.describe());

        let mut problems = FaultProblems::default();
        f.strategy = NetworkStrategy::Host;
        f.validate(&k8s, &mut problems);
        assert_eq!(problems.0.len(), 1, "{:?}", problems.0);
        assert_eq!(problems.0[0].0, Some("strategy"));
        assert!(problems.0[0].1.contains("`faultline`, `tc` and `iptables`"));
        let mut problems = FaultProblems::default();
        f.validate(&docker, &mut problems);
        assert!(problems.0.is_empty(), "{:?}", problems.0);
    }

    #[test]
    fn the_helper_deletes_the_rule_without_naming_the_marker() {
        let marker = "faultline-delayer-00000000deadbeef";
        let s = crate::fault::nfqueue::delete_rules_script(marker);
        assert!(!s.contains(marker) && !s.contains('\''), "{s}");
        // The real shell, with iptables played by a function over a rule list.
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("rules");
        std::fs::write(
            &rules,
            format!(
                "-P OUTPUT ACCEPT\n-A OUTPUT -m comment --comment {marker} -j NFQUEUE --queue-num 41000 --queue-bypass\n-A OUTPUT -m comment --comment other -j ACCEPT\n"
            ),
        )
        .unwrap();
        let log = dir.path().join("log");
        let program = format!(
            "iptables() {{ if [ \"$2\" = -S ]; then cat {r}; else echo \"$*\" >> {l}; fi; }}; {s}",
            r = rules.display(),
            l = log.display()
        );
        let st = std::process::Command::new("sh")
            .args(["-c", &program])
            .status()
            .unwrap();
        assert!(st.success());
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            format!(
                "-w -D OUTPUT -m comment --comment {marker} -j NFQUEUE --queue-num 41000 --queue-bypass\n"
            )
        );
    }

    fn scope_to_b_8080() -> Vec<Resolved> {
        vec![Resolved {
            side: net_scope::Side::To,
            nets: vec!["172.18.0.3/32".into()],
            ports: vec![(8080, 8080)],
            protocol: Some(crate::experiment::model::NetProtocol::Tcp),
        }]
    }

    #[test]
    fn corrupt_duplicate_and_reorder_are_netem_arguments_and_delayer_flags() {
        let f: NetworkFault = serde_json::from_value(serde_json::json!({
            "duration": "10s", "delay": "100ms", "corrupt": 1, "duplicate": "2%",
            "reorder": {"percent": 25, "gap": 5}
        }))
        .unwrap();
        assert!(needs_netem(&f));
        assert_eq!(
            join(add_commands(&f, Engine::Netem)),
            vec![
                "qdisc add dev eth0 root handle fa17: netem delay 100ms corrupt 1% duplicate 2% reorder 25% gap 5"
            ]
        );
        assert_eq!(
            f.describe(),
            "network delay 100ms, corrupt 1%, duplicate 2%, reorder 25% (gap 5) on eth0 for 10s"
        );
        let d = crate::fault::nfqueue::DelayerRecord {
            queue: 40001,
            marker: "m".into(),
            placement: host_placement(),
            interface: Some("eth0".into()),
            rules: Vec::new(),
        };
        let shape = crate::fault::nfqueue::Shape {
            delay: std::time::Duration::from_millis(100),
            jitter: std::time::Duration::ZERO,
            loss: 0.0,
            corrupt: 0.01,
            duplicate: 0.02,
            reorder: 0.25,
            gap: 5,
        };
        assert_eq!(
            delayer_args(&d, shape, 99).join(" "),
            "delayer --queue 40001 --delay-us 100000 --jitter-us 0 --loss 0 --corrupt 0.01 --duplicate 0.02 --reorder 0.25 --reorder-gap 5 --until 99 --marker m"
        );
        // A plain delay's command is the one it always was.
        let plain = crate::fault::nfqueue::Shape {
            corrupt: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            gap: 0,
            ..shape
        };
        assert_eq!(
            delayer_args(&d, plain, 99).join(" "),
            "delayer --queue 40001 --delay-us 100000 --jitter-us 0 --loss 0 --until 99 --marker m"
        );
    }

    #[test]
    fn scoped_netem_sits_on_a_fourth_prio_band_behind_u32_filters() {
        let f = fault(Some(200), Some(20), Some(1.0), None);
        assert_eq!(
            join(add_commands_scoped(&f, Engine::Netem, &scope_to_b_8080())),
            vec![
                "qdisc add dev eth0 root handle fa17: prio bands 4 priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1",
                "qdisc add dev eth0 parent fa17:4 handle fa18: netem delay 200ms 20ms loss 1%",
                "filter add dev eth0 parent fa17: protocol ip prio 1 u32 match ip dst 172.18.0.3/32 match ip protocol 6 0xff match ip dport 8080 0xffff flowid fa17:4",
            ]
        );
        // With a rate the tbf hangs under netem; revert deletes the root, and with it all.
        let f = fault(Some(50), None, None, Some("1mbit"));
        let cmds = join(add_commands_scoped(&f, Engine::Netem, &scope_to_b_8080()));
        assert_eq!(
            cmds[2],
            "qdisc add dev eth0 parent fa18:1 handle fa19: tbf rate 1000000bit burst 5000 latency 400ms"
        );
        assert_eq!(
            delete_command("eth0").join(" "),
            "qdisc del dev eth0 root handle fa17:"
        );
        assert_eq!(
            parse_root(
                "qdisc prio fa17: root refcnt 2 bands 4 priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1\n"
            ),
            Root::Ours
        );
    }

    #[test]
    fn scoped_nfqueue_sends_only_a_scoped_rate_to_tc() {
        // The delayer's rules carry the scope: tc has nothing to do without a rate.
        let f = fault(Some(200), None, None, None);
        assert!(add_commands_scoped(&f, Engine::Nfqueue, &scope_to_b_8080()).is_empty());
        let f = fault(Some(200), None, None, Some("1mbit"));
        assert_eq!(
            join(add_commands_scoped(&f, Engine::Nfqueue, &scope_to_b_8080()))[1],
            "qdisc add dev eth0 parent fa17:4 handle fa18: tbf rate 1000000bit burst 5000 latency 400ms"
        );
        // No scope: exactly today's commands.
        assert_eq!(
            add_commands_scoped(&f, Engine::Nfqueue, &[]),
            add_commands(&f, Engine::Nfqueue)
        );
    }

    #[test]
    fn records_written_before_scopes_still_read_and_delete_their_one_rule() {
        let old = serde_json::json!({
            "interface": "eth0",
            "access": {"via": "host"},
            "tc": false,
            "delayer": {"queue": 41000, "marker": "faultline-delayer-1", "interface": "eth0"}
        });
        let rec: QdiscRecord = serde_json::from_value(old).unwrap();
        assert!(rec.scope.is_empty() && rec.peers.is_empty() && rec.drops.is_none());
        let d = rec.delayer.unwrap();
        assert_eq!(
            d.specs().iter().map(|s| s.join(" ")).collect::<Vec<_>>(),
            vec![
                "OUTPUT -o eth0 -m comment --comment faultline-delayer-1 -j NFQUEUE --queue-num 41000 --queue-bypass"
            ]
        );
        assert_eq!(d.chains(), vec!["OUTPUT"]);
    }

    #[test]
    fn peers_are_named_the_platforms_way() {
        let (k8s, docker) = specs();
        let by_container: NetworkFault = serde_json::from_value(serde_json::json!({
            "duration": "10s", "delay": "10ms", "to": {"containers": {"names": ["db"]}, "hosts": ["db"]}
        }))
        .unwrap();
        let mut problems = FaultProblems::default();
        by_container.validate(&k8s, &mut problems);
        // `hosts` are resolved in the pod's network helper: only `containers` is refused.
        assert_eq!(problems.0.len(), 1, "{:?}", problems.0);
        assert!(
            problems.0[0]
                .1
                .contains("on Kubernetes name peer pods with `pods")
        );
        let mut problems = FaultProblems::default();
        by_container.validate(&docker, &mut problems);
        assert!(problems.0.is_empty(), "{:?}", problems.0);
        let by_pod: NetworkFault = serde_json::from_value(serde_json::json!({
            "duration": "10s", "partition": {"with": {"pods": {"selector": "app=db"}}}
        }))
        .unwrap();
        let mut problems = FaultProblems::default();
        by_pod.validate(&docker, &mut problems);
        assert_eq!(problems.0.len(), 1, "{:?}", problems.0);
        assert_eq!(problems.0[0].0, Some("partition"));
        let mut problems = FaultProblems::default();
        by_pod.validate(&k8s, &mut problems);
        assert!(problems.0.is_empty(), "{:?}", problems.0);
    }

    #[test]
    fn a_partition_is_validated_alone() {
        let docker: TargetSpec =
            serde_json::from_value(serde_json::json!({"docker": {"labels": {"app": "web"}}}))
                .unwrap();
        let f: NetworkFault = serde_json::from_value(serde_json::json!({
            "duration": "10s",
            "partition": {"with": {"containers": {"labels": {"tier": "db"}}}, "direction": "to"}
        }))
        .unwrap();
        let mut problems = FaultProblems::default();
        f.validate(&docker, &mut problems);
        assert!(problems.0.is_empty(), "{:?}", problems.0);
        assert_eq!(
            f.describe(),
            "network partition from containers tier=db (dropped from the target to them) on eth0 for 10s"
        );
        let scoped: NetworkFault = serde_json::from_value(serde_json::json!({
            "duration": "10s", "delay": "200ms", "direction": "ingress",
            "to": {"containers": {"names": ["b"]}, "ports": [8080, "9000-9010"], "protocol": "tcp"}
        }))
        .unwrap();
        assert_eq!(
            scoped.describe(),
            "network delay 200ms (to containers b, tcp, port 8080, 9000-9010, ingress) on eth0 for 10s"
        );
    }

    #[test]
    fn with_nfqueue_only_the_rate_goes_to_tc() {
        let f = fault(Some(100), Some(10), Some(5.0), Some("1mbit"));
        assert_eq!(
            join(add_commands(&f, Engine::Nfqueue)),
            vec![
                "qdisc add dev eth0 root handle fa17: tbf rate 1000000bit burst 5000 latency 400ms"
            ]
        );
        assert!(add_commands(&fault(Some(100), None, None, None), Engine::Nfqueue).is_empty());
        assert!(!needs_tc(
            &fault(Some(100), None, None, None),
            Engine::Nfqueue
        ));
        assert!(needs_tc(&fault(Some(100), None, None, None), Engine::Netem));
    }

    fn join(cmds: Vec<Vec<String>>) -> Vec<String> {
        cmds.into_iter().map(|c| c.join(" ")).collect()
    }

    #[test]
    fn rate_alone_is_one_tbf_under_the_owned_handle() {
        assert_eq!(
            join(add_commands_netem(&fault(None, None, None, Some("1mbit")))),
            vec![
                "qdisc add dev eth0 root handle fa17: tbf rate 1000000bit burst 5000 latency 400ms"
            ]
        );
        assert_eq!(
            join(add_commands_netem(&fault(
                None,
                None,
                None,
                Some("100mbit")
            ))),
            vec![
                "qdisc add dev eth0 root handle fa17: tbf rate 100000000bit burst 125000 latency 400ms"
            ]
        );
    }

    #[test]
    fn every_netem_combination() {
        let cases = [
            (
                fault(Some(100), None, None, None),
                vec!["qdisc add dev eth0 root handle fa17: netem delay 100ms"],
            ),
            (
                fault(Some(100), Some(10), None, None),
                vec!["qdisc add dev eth0 root handle fa17: netem delay 100ms 10ms"],
            ),
            (
                fault(None, None, Some(5.0), None),
                vec!["qdisc add dev eth0 root handle fa17: netem loss 5%"],
            ),
            (
                fault(Some(50), Some(5), Some(12.5), None),
                vec!["qdisc add dev eth0 root handle fa17: netem delay 50ms 5ms loss 12.5%"],
            ),
            (
                fault(Some(100), None, Some(1.0), Some("1mbit")),
                vec![
                    "qdisc add dev eth0 root handle fa17: netem delay 100ms loss 1%",
                    "qdisc add dev eth0 parent fa17:1 handle fa18: tbf rate 1000000bit burst 5000 latency 400ms",
                ],
            ),
        ];
        for (f, want) in cases {
            assert_eq!(join(add_commands(&f, Engine::Netem)), want);
            assert!(needs_netem(&f));
        }
    }

    #[test]
    fn the_interface_is_a_parameter() {
        let mut f = fault(Some(10), None, None, None);
        f.interface = "ens5".into();
        assert!(
            add_commands(&f, Engine::Netem)[0]
                .join(" ")
                .contains("dev ens5 root")
        );
        assert_eq!(
            delete_command("ens5").join(" "),
            "qdisc del dev ens5 root handle fa17:"
        );
        assert_eq!(show_command("ens5").join(" "), "qdisc show dev ens5");
    }

    #[test]
    fn root_qdiscs() {
        assert_eq!(
            parse_root("qdisc noqueue 0: root refcnt 2\n"),
            Root::Default
        );
        assert_eq!(
            parse_root("qdisc pfifo_fast 0: root refcnt 2 bands 3\n"),
            Root::Default
        );
        assert_eq!(parse_root(""), Root::Default);
        assert_eq!(
            parse_root("qdisc tbf fa17: root refcnt 2 rate 1Mbit burst 5000b lat 400ms\n"),
            Root::Ours
        );
        assert_eq!(
            parse_root("qdisc htb 1: root refcnt 2 r2q 10 default 0\nqdisc sfq 10: parent 1:10\n"),
            Root::Foreign {
                kind: "htb".into(),
                handle: "1:".into()
            }
        );
        assert_eq!(
            parse_root("qdisc tbf 8001: root refcnt 2 rate 1Mbit\n"),
            Root::Foreign {
                kind: "tbf".into(),
                handle: "8001:".into()
            }
        );
    }
}
