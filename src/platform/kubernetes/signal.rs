//! The signal helper: a short-lived privileged pod on the target's node that signals
//! every process of one container of the pod (`kill: {container: NAME}`), found through
//! the container's cgroup on the node.
//!
//! A process inside the pod cannot do this: a container's PID 1 ignores SIGKILL sent from
//! its own PID namespace (an ephemeral container sharing it included). From the node's PID
//! namespace (hostPID) it is an ordinary process. The helper finds the cgroup under the
//! node's `/sys/fs/cgroup` (mounted at `/host/cgroup`) by the container ID, signals the
//! PIDs in its `cgroup.procs`, says how many through its termination message and ends;
//! `activeDeadlineSeconds` bounds it. The target pod owns it, so it goes with the target.
//! Its image needs only `sh`, `find`, `head` and `kill`.

use k8s_openapi::api::core::v1::Pod;

pub use super::node_helper::Helper;
use super::node_helper::{NodePod, script_start};

/// The helper's name: fixed by the target's UID and the container.
pub fn helper_name(target_uid: &str, container: &str) -> String {
    format!("faultline-kill-{target_uid}-{container}")
}

/// The helper's script; `FAULTLINE_CONTAINER_ID`, `FAULTLINE_SIGNAL` (a number) and
/// `FAULTLINE_NODE` come from its environment (the start:
/// [`super::node_helper::script_start`]).
pub const SCRIPT: &str = concat!(
    script_start!("faultline-kill"),
    r#"if [ -e "$root/cgroup.controllers" ]; then
  base="$root"
else
  base=
  for h in pids freezer memory cpu,cpuacct systemd; do
    if [ -d "$root/$h" ]; then base="$root/$h"; break; fi
  done
  [ -n "$base" ] || fail "node $FAULTLINE_NODE has no cgroup hierarchy under /sys/fs/cgroup"
fi
dir=$(find "$base" -maxdepth 8 -type d -name "*$id*" ! -name "*conmon*" 2>/dev/null | head -n 1)
[ -n "$dir" ] || fail "container $id has no cgroup on node $FAULTLINE_NODE"
n=0
for p in $(cat "$dir/cgroup.procs"); do
  kill -"$FAULTLINE_SIGNAL" "$p" 2>/dev/null && n=$((n+1))
done
[ "$n" -gt 0 ] || fail "no process of container $id could be signalled (cgroup $dir)"
echo "signalled $n process(es) of $dir" > /dev/termination-log
echo "faultline-kill: signalled $n process(es) of $dir"
"#
);

/// The helper pod's spec: it sends `signal` (a number).
pub fn helper_pod(h: &Helper<'_>, signal: i32) -> Pod {
    NodePod {
        of: h,
        kind: "kill",
        name: helper_name(h.target_uid, h.container),
        container_name: "signaller",
        script: SCRIPT,
        env: ("FAULTLINE_SIGNAL", signal.to_string()),
        deadline_secs: h.lifetime.as_secs().max(1),
        grace_secs: 0,
        writes_cgroups: false,
        ready_when: None,
    }
    .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The script against a fake cgroup tree, with the real shell: the processes listed in
    /// the container's cgroup are signalled, the monitor's sibling cgroup is not used.
    #[test]
    fn the_script_signals_the_processes_of_the_containers_cgroup() {
        let root = tempfile::tempdir().unwrap();
        let pod = root.path().join("kubepods.slice/kubepods-pod1.slice");
        let cg = pod.join("cri-containerd-abc123.scope");
        let conmon = pod.join("cri-conmon-abc123.scope");
        std::fs::create_dir_all(&cg).unwrap();
        std::fs::create_dir_all(&conmon).unwrap();
        std::fs::write(root.path().join("cgroup.controllers"), "cpu memory\n").unwrap();
        let mut victim = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let mut bystander = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        std::fs::write(cg.join("cgroup.procs"), format!("{}\n", victim.id())).unwrap();
        std::fs::write(conmon.join("cgroup.procs"), format!("{}\n", bystander.id())).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("termination-log");
        let script = SCRIPT
            .replace("/host/cgroup", root.path().to_str().unwrap())
            .replace("/dev/termination-log", log.to_str().unwrap());
        let run = |id: &str| {
            std::process::Command::new("sh")
                .args(["-c", &script])
                .env("FAULTLINE_CONTAINER_ID", id)
                .env("FAULTLINE_SIGNAL", "15")
                .env("FAULTLINE_NODE", "node-1")
                .output()
                .unwrap()
        };
        let out = run("abc123");
        assert!(out.status.success(), "{out:?}");
        let status = victim.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(15));
        assert_eq!(
            bystander.try_wait().unwrap(),
            None,
            "the monitor's cgroup was left alone"
        );
        let _ = bystander.kill();
        let _ = bystander.wait();
        let said = std::fs::read_to_string(&log).unwrap();
        assert!(said.starts_with("signalled 1 process(es) of "), "{said}");

        // No such container: a failure that says so.
        let out = run("nope");
        assert!(!out.status.success());
        assert_eq!(
            std::fs::read_to_string(&log).unwrap().trim(),
            "container nope has no cgroup on node node-1"
        );
    }

    #[test]
    fn the_helper_runs_on_the_targets_node_with_the_container_and_signal() {
        let envoy = Helper {
            container: "envoy",
            ..Helper::example()
        };
        let pod = helper_pod(&envoy, 9);
        assert_eq!(
            pod.metadata.name.as_deref(),
            Some("faultline-kill-uid-1-envoy")
        );
        let spec = pod.spec.unwrap();
        assert_eq!(spec.host_pid, Some(true));
        assert_eq!(spec.node_name.as_deref(), Some("node-2"));
        assert_eq!(spec.active_deadline_seconds, Some(60));
    }
}
