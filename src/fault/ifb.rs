//! Ingress shaping for the `network` fault on tc. A qdisc shapes only what an interface
//! sends, so the packets a target receives are redirected (an `ingress` qdisc whose u32
//! filters `mirred` them) to an IFB device in the target's network namespace, where the
//! fault's qdisc (netem, tbf) sits at the root as it would on egress.
//!
//! Ownership, as for the root qdisc: the IFB device's name is faultline's ([`DEVICE`]); an
//! `ingress` qdisc that was there before is never replaced; ours is the one whose filters
//! redirect to [`DEVICE`], and only that one is deleted. Deleting the device takes its
//! qdiscs with it.

use super::net_scope::{self, Chain, Resolved};
use crate::platform::{ExecOutput, NetAccess, Platform, PlatformError, Target};

/// faultline's IFB device in a target's network namespace (at most 15 characters).
pub const DEVICE: &str = "ifb-fa17";

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(ToString::to_string).collect()
}

/// The filters (tc arguments) that send the received packets in scope to [`DEVICE`]: one
/// per address, protocol and port block, or one that takes everything.
pub fn redirect_filters(interface: &str, scopes: &[Resolved]) -> Vec<Vec<String>> {
    let head = |protocol: &str| {
        argv(&[
            "filter", "add", "dev", interface, "parent", "ffff:", "protocol", protocol, "prio",
            "1", "u32",
        ])
    };
    let tail = argv(&["action", "mirred", "egress", "redirect", "dev", DEVICE]);
    let matches = net_scope::u32_matches(scopes, Chain::Input);
    if matches.is_empty() {
        let mut v = head("all");
        v.extend(argv(&["match", "u32", "0", "0"]));
        v.extend(tail);
        return vec![v];
    }
    matches
        .into_iter()
        .map(|m| {
            let mut v = head("ip");
            v.extend(m);
            v.extend(tail.iter().cloned());
            v
        })
        .collect()
}

/// Every command (program first) that sets ingress shaping up, in order: the device, the
/// fault's qdiscs on it (`device_qdiscs`, tc arguments naming [`DEVICE`]), the `ingress`
/// qdisc and its redirecting filters.
pub fn setup_commands(
    interface: &str,
    device_qdiscs: &[Vec<String>],
    scopes: &[Resolved],
) -> Vec<Vec<String>> {
    let tc = |args: &[String]| {
        let mut v = vec!["tc".to_string()];
        v.extend(args.iter().cloned());
        v
    };
    let mut cmds = vec![
        argv(&["ip", "link", "add", DEVICE, "type", "ifb"]),
        argv(&["ip", "link", "set", "dev", DEVICE, "up"]),
    ];
    cmds.extend(device_qdiscs.iter().map(|q| tc(q)));
    cmds.push(argv(&[
        "tc", "qdisc", "add", "dev", interface, "handle", "ffff:", "ingress",
    ]));
    cmds.extend(redirect_filters(interface, scopes).iter().map(|f| tc(f)));
    cmds
}

/// The same teardown as a shell line, for a helper that cleans up when it ends on its own
/// (faultline died): the `ingress` qdisc only if its filters are ours, then the device.
pub fn shell_teardown(interface: &str) -> String {
    let filters = format!("tc filter show dev {interface} parent ffff: 2>/dev/null");
    let del = format!("tc qdisc del dev {interface} ingress 2>/dev/null");
    // No `$` in it: Kubernetes would expand it in a container's command.
    format!(
        "ip link show {DEVICE} >/dev/null 2>&1 && ! {filters} | grep -q . && {del}; \
         {filters} | grep -q {DEVICE} && {del}; ip link del {DEVICE} 2>/dev/null"
    )
}

/// Whether `tc qdisc show` lists an `ingress` qdisc.
fn has_ingress(qdisc_show: &str) -> bool {
    qdisc_show
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some("ingress"))
}

/// The target's network namespace, as faultline reaches it.
struct Netns<'a> {
    platform: &'a dyn Platform,
    target: &'a Target,
    access: &'a NetAccess,
}

impl Netns<'_> {
    async fn run(&self, cmd: &[String]) -> Result<ExecOutput, PlatformError> {
        self.platform
            .netns_exec(self.target, self.access, cmd)
            .await
    }

    /// Runs `cmd`; a non-zero exit is an error that says what failed.
    async fn ok(&self, cmd: &[String]) -> Result<(), PlatformError> {
        let out = self.run(cmd).await?;
        if out.code != 0 {
            return Err(failed(cmd, &out, self.target));
        }
        Ok(())
    }

    async fn has_device(&self) -> Result<bool, PlatformError> {
        Ok(self.run(&argv(&["ip", "link", "show", DEVICE])).await?.code == 0)
    }
}

fn failed(cmd: &[String], out: &ExecOutput, target: &Target) -> PlatformError {
    let msg = if out.stderr.trim().is_empty() {
        out.stdout.trim()
    } else {
        out.stderr.trim()
    };
    let what = cmd.iter().take(4).cloned().collect::<Vec<_>>().join(" ");
    // 126/127: the program is not in the helper's image (a sidecar with tc alone).
    if matches!(out.code, 126 | 127) || msg.contains("executable file not found") {
        return PlatformError::Refused(format!(
            "`{}` is not available where tc runs for this target: `direction: ingress` on tc (netem, or a `rate`) needs `ip` and `tc` from iproute2 (use an image with iproute2 as `tc_image`, or `strategy: host`)",
            cmd[0]
        ));
    }
    if cmd.starts_with(&argv(&["ip", "link", "add"]))
        && (msg.contains("Unknown device type") || msg.contains("not supported"))
    {
        return PlatformError::Refused(format!(
            "the kernel of `{}` cannot create an IFB device (module `ifb`): `direction: ingress` on tc (netem, or a `rate`) needs one; load it with `modprobe ifb`, or use `engine: nfqueue` for delay, jitter and loss",
            target.name
        ));
    }
    if msg.contains(super::network::NETEM_MISSING) {
        return PlatformError::Refused(super::network::netem_missing_message());
    }
    PlatformError::Refused(format!("`{what}` failed (exit {}): {msg}", out.code))
}

/// Refuses when an `ingress` qdisc or [`DEVICE`] is there already: someone else's qdisc
/// is never replaced; our own device means an earlier run was not reverted.
async fn check_free(ns: &Netns<'_>, interface: &str) -> Result<(), PlatformError> {
    if ns.has_device().await? {
        return Err(PlatformError::Refused(format!(
            "`{}` already has faultline's IFB device `{DEVICE}`, left by an earlier run: run `faultline recover`",
            ns.target.name
        )));
    }
    let show = argv(&["tc", "qdisc", "show", "dev", interface]);
    let out = ns.run(&show).await?;
    if out.code != 0 {
        return Err(failed(&show, &out, ns.target));
    }
    if has_ingress(&out.stdout) {
        return Err(PlatformError::Refused(format!(
            "`{}` already has an ingress qdisc on {interface} that faultline did not create; refusing to replace it",
            ns.target.name
        )));
    }
    Ok(())
}

/// Sets ingress shaping up (see [`setup_commands`]); a failure part-way removes what was
/// added.
pub async fn add(
    platform: &dyn Platform,
    target: &Target,
    access: &NetAccess,
    interface: &str,
    device_qdiscs: &[Vec<String>],
    scopes: &[Resolved],
) -> Result<(), PlatformError> {
    let ns = Netns {
        platform,
        target,
        access,
    };
    check_free(&ns, interface).await?;
    for (i, cmd) in setup_commands(interface, device_qdiscs, scopes)
        .iter()
        .enumerate()
    {
        if let Err(e) = ns.ok(cmd).await {
            if i > 0 {
                let _ = remove(platform, target, access, interface).await;
            }
            return Err(e);
        }
    }
    Ok(())
}

/// Removes ingress shaping if it is there (the `ingress` qdisc only when it is ours), and
/// confirms that the device is gone.
pub async fn remove(
    platform: &dyn Platform,
    target: &Target,
    access: &NetAccess,
    interface: &str,
) -> Result<(), PlatformError> {
    let ns = Netns {
        platform,
        target,
        access,
    };
    let qdiscs = ns
        .run(&argv(&["tc", "qdisc", "show", "dev", interface]))
        .await?;
    if has_ingress(&qdiscs.stdout) {
        let filters = ns
            .run(&argv(&[
                "tc", "filter", "show", "dev", interface, "parent", "ffff:",
            ]))
            .await?;
        // Ours: it redirects to the device; or it has no filter yet beside the device, left
        // by a setup that stopped part-way (the device comes first, and setup refuses an
        // ingress qdisc that was already there).
        let unfinished = filters.stdout.trim().is_empty() && ns.has_device().await?;
        if filters.stdout.contains(DEVICE) || unfinished {
            ns.ok(&argv(&["tc", "qdisc", "del", "dev", interface, "ingress"]))
                .await?;
        }
    }
    if ns.has_device().await? {
        ns.ok(&argv(&["ip", "link", "del", DEVICE])).await?;
        if ns.has_device().await? {
            return Err(PlatformError::Refused(format!(
                "faultline's IFB device `{DEVICE}` is still in `{}` after delete",
                target.name
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::model::NetProtocol;
    use crate::fault::net_scope::Side;

    fn lines(v: Vec<Vec<String>>) -> Vec<String> {
        v.into_iter().map(|c| c.join(" ")).collect()
    }

    #[test]
    fn unscoped_ingress_redirects_everything_to_the_device() {
        let tbf = argv(&[
            "qdisc", "add", "dev", DEVICE, "root", "handle", "fa17:", "tbf",
        ]);
        assert_eq!(
            lines(setup_commands("eth0", &[tbf], &[])),
            vec![
                "ip link add ifb-fa17 type ifb",
                "ip link set dev ifb-fa17 up",
                "tc qdisc add dev ifb-fa17 root handle fa17: tbf",
                "tc qdisc add dev eth0 handle ffff: ingress",
                "tc filter add dev eth0 parent ffff: protocol all prio 1 u32 match u32 0 0 action mirred egress redirect dev ifb-fa17",
            ]
        );
    }

    #[test]
    fn scoped_ingress_redirects_only_what_comes_from_the_peers() {
        let to_b = Resolved {
            side: Side::To,
            nets: vec!["172.18.0.3/32".into()],
            ports: vec![(8080, 8080)],
            protocol: Some(NetProtocol::Tcp),
        };
        assert_eq!(
            lines(redirect_filters("eth0", &[to_b])),
            vec![
                "filter add dev eth0 parent ffff: protocol ip prio 1 u32 match ip src 172.18.0.3/32 match ip protocol 6 0xff match ip sport 8080 0xffff action mirred egress redirect dev ifb-fa17",
            ]
        );
    }

    #[test]
    fn the_helpers_teardown_deletes_only_an_ingress_qdisc_that_is_ours() {
        assert!(!shell_teardown("eth0").contains('$'));
        // Run for real in scratch network namespaces: what is left on `lo` afterwards.
        let left = |setup: &str| -> Option<String> {
            let script = format!(
                "{setup}; {}; tc qdisc show dev lo | grep ingress; ip link show {DEVICE} 2>/dev/null",
                shell_teardown("lo")
            );
            let out = std::process::Command::new("unshare")
                .args(["--net", "sh", "-c", &script])
                .output()
                .ok()?;
            out.status.code()?;
            Some(String::from_utf8_lossy(&out.stdout).into_owned())
        };
        let device = format!("ip link add {DEVICE} type ifb");
        let ingress = "tc qdisc add dev lo handle ffff: ingress";
        let ours = setup_commands("lo", &[], &[])
            .iter()
            .map(|c| c.join(" "))
            .collect::<Vec<_>>()
            .join(" && ");
        let Some(full) = left(&ours) else {
            crate::test_support::skip::skip(
                crate::test_support::skip::Skip::Missing,
                "`unshare --net` does not run here (root and util-linux needed)",
            );
            return;
        };
        assert_eq!(full, "", "a finished setup is removed whole");
        // Stopped part-way: the device and an ingress qdisc without its filter yet.
        assert_eq!(left(&format!("{device} && {ingress}")).unwrap(), "");
        // Someone else's ingress qdisc, with a filter of theirs and no device of ours.
        let foreign = format!(
            "{ingress} && tc filter add dev lo parent ffff: protocol all prio 1 u32 match u32 0 0 action drop"
        );
        assert!(left(&foreign).unwrap().contains("qdisc ingress ffff:"));
        // Someone else's bare ingress qdisc, and no device of ours: left too.
        assert!(left(ingress).unwrap().contains("qdisc ingress ffff:"));
    }

    #[test]
    fn an_ingress_qdisc_is_read_from_the_listing() {
        assert!(has_ingress(
            "qdisc noqueue 0: root refcnt 2\nqdisc ingress ffff: parent ffff:fff1 ----------------\n"
        ));
        assert!(!has_ingress("qdisc noqueue 0: root refcnt 2\n"));
    }
}
