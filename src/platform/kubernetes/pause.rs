//! The pause helper: a short-lived privileged pod on the target's node that freezes the
//! target container's cgroup (v1 `freezer.state`, v2 `cgroup.freeze`).
//!
//! A process inside the pod cannot do this: PID 1 ignores SIGSTOP from its own PID
//! namespace. The helper finds the cgroup under the node's `/sys/fs/cgroup` (mounted at
//! `/host/cgroup`) by the container ID, or, failing that, from `/proc/*/cgroup` of the
//! node's processes (hostPID). It thaws on TERM (the pod is deleted at revert), and by
//! itself when its lifetime ends, even if faultline died; `activeDeadlineSeconds` backs
//! that up. It reports "frozen" through its readiness probe, and why it failed through
//! its termination message. The target pod owns it, so it goes when the target goes. Its
//! image needs only `sh` and `sleep`.

use k8s_openapi::api::core::v1::Pod;

pub use super::node_helper::Helper;
use super::node_helper::{NodePod, script_start};

/// The helper's name: fixed by the target's UID, so that a later process finds it.
pub fn helper_name(target_uid: &str) -> String {
    format!("faultline-pause-{target_uid}")
}

/// Where the helper says the cgroup is frozen; its readiness probe reads it.
const FROZEN_MARK: &str = "/tmp/faultline-frozen";

/// Extra time the kubelet gives the helper past its own deadline.
const DEADLINE_MARGIN: u64 = 30;

/// The helper's script; `FAULTLINE_CONTAINER_ID`, `FAULTLINE_LIFETIME` and `FAULTLINE_NODE`
/// come from its environment (the start: [`super::node_helper::script_start`]).
pub const SCRIPT: &str = concat!(
    script_start!("faultline-pause"),
    r#"if [ -e "$root/cgroup.controllers" ]; then
  v=2; base="$root"; file=cgroup.freeze; frozen=1; thawed=0
elif [ -d "$root/freezer" ]; then
  v=1; base="$root/freezer"; file=freezer.state; frozen=FROZEN; thawed=THAWED
else
  fail "node $FAULTLINE_NODE has neither the cgroup v1 freezer nor cgroup v2 under /sys/fs/cgroup"
fi
dir=
for d in "$base"/*"$id"* "$base"/*/*"$id"* "$base"/*/*/*"$id"* "$base"/*/*/*/*"$id"* \
         "$base"/*/*/*/*/*"$id"* "$base"/*/*/*/*/*/*"$id"* "$base"/*/*/*/*/*/*/*"$id"*; do
  case "$d" in *conmon*) continue ;; esac
  if [ -d "$d" ]; then dir="$d"; break; fi
done
if [ -z "$dir" ]; then
  for f in /proc/[0-9]*/cgroup; do
    [ -r "$f" ] || continue
    while IFS= read -r line; do
      case "$line" in
        *conmon*) ;;
        0::*"$id"*|*:freezer:*"$id"*)
          p="${line#*:}"; p="${p#*:}"
          while :; do case "$p" in /../*) p="${p#/..}" ;; *) break ;; esac; done
          if [ -d "$base$p" ]; then dir="$base$p"; break 2; fi ;;
      esac
    done < "$f"
  done
fi
[ -n "$dir" ] || fail "container $id has no cgroup on node $FAULTLINE_NODE (searched /sys/fs/cgroup and /proc/*/cgroup)"
[ -w "$dir/$file" ] || fail "cannot write $dir/$file on node $FAULTLINE_NODE: the cgroup freezer is not available"
thaw() { echo "$thawed" > "$dir/$file"; }
trap 'thaw; echo "faultline-pause: thawed $dir"; exit 0' TERM INT
echo "$frozen" > "$dir/$file" || fail "cannot freeze $dir"
n=0
while :; do
  st=
  if [ $v = 2 ]; then
    while read -r k val; do [ "$k" = frozen ] && st=$val; done < "$dir/cgroup.events"
    [ "$st" = 1 ] && break
  else
    read -r st < "$dir/freezer.state"
    [ "$st" = FROZEN ] && break
  fi
  n=$((n+1))
  if [ $n -ge 10 ]; then thaw; fail "the cgroup $dir did not freeze within 10s"; fi
  sleep 1
done
echo "$dir" > /tmp/faultline-frozen
echo "faultline-pause: froze $dir for at most ${FAULTLINE_LIFETIME}s"
sleep "$FAULTLINE_LIFETIME" & wait $!
thaw
echo "faultline-pause: lifetime over; thawed $dir"
"#
);

/// The helper pod's spec.
pub fn helper_pod(h: &Helper<'_>) -> Pod {
    let lifetime = h.lifetime.as_secs().max(1);
    NodePod {
        of: h,
        kind: "pause",
        name: helper_name(h.target_uid),
        container_name: "freezer",
        script: SCRIPT,
        env: ("FAULTLINE_LIFETIME", lifetime.to_string()),
        deadline_secs: lifetime + DEADLINE_MARGIN,
        grace_secs: 15,
        writes_cgroups: true,
        ready_when: Some(&format!("[ -e {FROZEN_MARK} ]")),
    }
    .build()
}

/// `containerd://abc…` → `abc…`.
pub fn strip_runtime(container_id: &str) -> &str {
    container_id
        .split_once("://")
        .map(|(_, id)| id)
        .unwrap_or(container_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_helper_runs_on_the_targets_node_with_its_container_id() {
        let pod = helper_pod(&Helper {
            target_uid: "0b5e-uid",
            container_id: "abc123",
            lifetime: Duration::from_secs(65),
            ..Helper::example()
        });
        assert_eq!(
            pod.metadata.name.as_deref(),
            Some("faultline-pause-0b5e-uid")
        );
        let spec = pod.spec.unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("node-2"));
        assert_eq!(spec.host_pid, Some(true));
        assert_eq!(spec.active_deadline_seconds, Some(95));
        let c = &spec.containers[0];
        let env: Vec<(String, String)> = c
            .env
            .iter()
            .flatten()
            .map(|e| (e.name.clone(), e.value.clone().unwrap()))
            .collect();
        assert!(env.contains(&("FAULTLINE_CONTAINER_ID".into(), "abc123".into())));
        assert!(env.contains(&("FAULTLINE_LIFETIME".into(), "65".into())));
        assert_eq!(strip_runtime("containerd://abc123"), "abc123");
        assert_eq!(strip_runtime("abc123"), "abc123");
    }

    /// The script as the helper runs it, with the real shell: the node's cgroup tree at
    /// `root`, its termination message and frozen mark in `tmp` (`msg`, `frozen`).
    fn helper(
        root: &std::path::Path,
        tmp: &std::path::Path,
        id: &str,
        lifetime: &str,
    ) -> std::process::Command {
        let script = SCRIPT
            .replace("root=/host/cgroup", &format!("root={}", root.display()))
            .replace(
                "/dev/termination-log",
                &tmp.join("msg").display().to_string(),
            )
            .replace(FROZEN_MARK, &tmp.join("frozen").display().to_string());
        let mut sh = std::process::Command::new("sh");
        sh.args(["-c", &script])
            .env("FAULTLINE_CONTAINER_ID", id)
            .env("FAULTLINE_LIFETIME", lifetime)
            .env("FAULTLINE_NODE", "n1");
        sh
    }

    /// A fake node cgroup tree in a new directory: the cgroup directory `cg` (a path from
    /// the root) with `files` in it, and the root's `cgroup.controllers` on `v2`.
    fn cgroup_tree(
        cg: &str,
        v2: bool,
        files: &[(&str, &str)],
    ) -> (tempfile::TempDir, std::path::PathBuf) {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(cg);
        std::fs::create_dir_all(&dir).unwrap();
        if v2 {
            std::fs::write(root.path().join("cgroup.controllers"), "cpu memory\n").unwrap();
        }
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        (root, dir)
    }

    /// The script against a fake cgroup tree, with the real shell.
    #[test]
    fn the_script_freezes_and_thaws_a_v2_cgroup() {
        let pod = "kubepods.slice/kubepods-pod1.slice";
        let (root, cg) = cgroup_tree(
            &format!("{pod}/cri-containerd-abc123.scope"),
            true,
            &[
                ("cgroup.freeze", "0\n"),
                ("cgroup.events", "populated 1\nfrozen 1\n"),
            ],
        );
        // Sorted before the container's own: must be skipped.
        std::fs::create_dir_all(root.path().join(pod).join("cri-conmon-abc123.scope")).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let out = helper(root.path(), tmp.path(), "abc123", "0")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("froze"), "{stdout}");
        assert!(stdout.contains("thawed"), "{stdout}");
        let mark = std::fs::read_to_string(tmp.path().join("frozen")).unwrap();
        assert!(mark.trim().ends_with("cri-containerd-abc123.scope"));
        assert_eq!(
            std::fs::read_to_string(cg.join("cgroup.freeze")).unwrap(),
            "0\n"
        );

        // An unknown container: a clear termination message, exit 1.
        let out = helper(root.path(), tmp.path(), "fff999", "0")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let msg = std::fs::read_to_string(tmp.path().join("msg")).unwrap();
        assert!(
            msg.starts_with("container fff999 has no cgroup on node n1"),
            "{msg}"
        );
    }

    /// Revert deletes the helper pod: TERM must thaw at once.
    #[test]
    fn the_script_thaws_on_term() {
        let (root, cg) = cgroup_tree(
            "kubepods/pod1/abc123",
            true,
            &[("cgroup.events", "frozen 1\n"), ("cgroup.freeze", "0\n")],
        );
        let tmp = tempfile::tempdir().unwrap();
        let mark = tmp.path().join("frozen");
        let mut child = helper(root.path(), tmp.path(), "abc123", "60")
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while !mark.exists() {
            assert!(start.elapsed() < Duration::from_secs(10), "never frozen");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            std::fs::read_to_string(cg.join("cgroup.freeze")).unwrap(),
            "1\n"
        );
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        assert_eq!(child.wait().unwrap().code(), Some(0));
        assert!(start.elapsed() < Duration::from_secs(10));
        assert_eq!(
            std::fs::read_to_string(cg.join("cgroup.freeze")).unwrap(),
            "0\n"
        );
    }

    #[test]
    fn the_script_freezes_and_thaws_a_v1_freezer_cgroup() {
        let (root, cg) = cgroup_tree(
            "freezer/kubepods/burstable/pod1/abc123",
            false,
            &[("freezer.state", "THAWED\n")],
        );
        let tmp = tempfile::tempdir().unwrap();
        let out = helper(root.path(), tmp.path(), "abc123", "0")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let mark = std::fs::read_to_string(tmp.path().join("frozen")).unwrap();
        assert!(mark.trim().ends_with("pod1/abc123"), "{mark}");
        assert_eq!(
            std::fs::read_to_string(cg.join("freezer.state")).unwrap(),
            "THAWED\n"
        );
    }
}
