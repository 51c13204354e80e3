//! The network helper: an ephemeral container in the target pod (it shares the pod's
//! network namespace) with NET_ADMIN, running the same self-cleaning script as the Docker
//! sidecar: on TERM, and when its lifetime ends, it deletes faultline's qdisc and exits.
//! faultline runs `tc` in it through exec. Ephemeral containers cannot be removed from a
//! pod, so revert stops the script instead: nothing stays active, only a terminated
//! container in the pod's status.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;

use super::expand;

/// The script writes its PID here; revert signals exactly that process. (PID 1 may be
/// the pod's pause process when the pod shares its process namespace.)
pub const PID_FILE: &str = "/tmp/faultline-net.pid";

/// A fresh helper name: ephemeral container names can never be reused in a pod.
pub fn helper_name() -> String {
    format!("faultline-net-{:08x}", rand::random::<u32>())
}

/// The helper's script, as the Docker sidecar's, plus its PID file: `on_exit` is the
/// fault's own cleanup.
pub fn script(on_exit: &str, lifetime: Duration) -> String {
    format!(
        "trap '{on_exit}; exit 0' TERM INT; echo $$ > {PID_FILE} || exit 1; sleep {} & wait $!; {on_exit}; exit 0",
        lifetime.as_secs().max(1)
    )
}

/// What revert runs in the helper: TERM to the script, whose trap removes the qdisc.
pub fn stop_command() -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        format!("read pid < {PID_FILE} && kill -TERM \"$pid\""),
    ]
}

/// The strategic-merge patch of the pod's `ephemeralcontainers` subresource. The UID makes
/// the API server refuse a different pod that took the target's name.
pub fn ephemeral_patch(
    target_uid: &str,
    name: &str,
    image: &str,
    on_exit: &str,
    lifetime: Duration,
) -> serde_json::Value {
    serde_json::json!({
        "metadata": {"uid": target_uid},
        "spec": {
            "ephemeralContainers": [{
                "name": name,
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                // Kubernetes expands `$(VAR)` and `$$` in a command: `echo $$` must reach
                // the shell as written.
                "command": expand::escape_all(&["sh", "-c", &script(on_exit, lifetime)]),
                "stdin": false,
                "tty": false,
                // tc needs root with NET_ADMIN, whatever user the pod runs as.
                "securityContext": {
                    "runAsUser": 0,
                    "runAsNonRoot": false,
                    "capabilities": {"add": ["NET_ADMIN"]},
                },
            }],
        },
    })
}

/// The patch that adds a process helper (e.g. cpu_stress's): an ephemeral container named
/// by the process's marker, running `command`, which ends by itself. It shares the pod's
/// cgroup, so what it does counts against the pod.
pub fn stress_patch(
    target_uid: &str,
    marker: &str,
    image: &str,
    command: &[String],
) -> serde_json::Value {
    process_patch(target_uid, marker, image, command, false)
}

/// [`stress_patch`], and with `net_admin` the process changes the pod's network namespace
/// (the nfqueue delayer binds a netfilter queue): root with NET_ADMIN, as the network
/// helper.
pub fn process_patch(
    target_uid: &str,
    marker: &str,
    image: &str,
    command: &[String],
    net_admin: bool,
) -> serde_json::Value {
    let mut container = serde_json::json!({
        "name": marker,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        // Kubernetes expands `$(VAR)` and `$$` in a command: escape it all.
        "command": expand::escape_all(command),
        "stdin": false,
        "tty": false,
    });
    if net_admin {
        container["securityContext"] = serde_json::json!({
            "runAsUser": 0,
            "runAsNonRoot": false,
            "capabilities": {"add": ["NET_ADMIN"]},
        });
    }
    serde_json::json!({
        "metadata": {"uid": target_uid},
        "spec": {"ephemeralContainers": [container]},
    })
}

/// `pod/container` in [`crate::platform::NetAccess::Sidecar`]`::helper`: the namespace is
/// the platform's.
pub fn helper_ref(pod: &str, container: &str) -> String {
    format!("{pod}/{container}")
}

pub fn parse_helper_ref(helper: &str) -> Option<(&str, &str)> {
    helper
        .split_once('/')
        .filter(|(p, c)| !p.is_empty() && !c.is_empty())
}

/// The exit code an exec's final status reports: `Success` is 0; a non-zero exit is in
/// the `ExitCode` cause; anything else (the command could not start) is `None`.
pub fn exit_code(status: &Status) -> Option<i64> {
    if status.status.as_deref() == Some("Success") {
        return Some(0);
    }
    if status.reason.as_deref() == Some("NonZeroExitCode") {
        return status
            .details
            .as_ref()?
            .causes
            .iter()
            .flatten()
            .find(|c| c.reason.as_deref() == Some("ExitCode"))
            .and_then(|c| c.message.as_deref()?.trim().parse().ok());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stress_helper_is_named_by_its_marker_and_limits_itself() {
        let command: Vec<String> = [
            "sh",
            "-c",
            "read u _ </proc/uptime; end=$(( ${u%.*}${u#*.} + 3000 ))",
            "faultline-stress-00ab",
        ]
        .map(String::from)
        .into();
        let p = stress_patch("uid-1", "faultline-stress-00ab", "busybox:1", &command);
        let c = &p["spec"]["ephemeralContainers"][0];
        assert_eq!(p["metadata"]["uid"], "uid-1");
        assert_eq!(c["name"], "faultline-stress-00ab");
        assert_eq!(
            c["command"][3], "faultline-stress-00ab",
            "$0 carries the marker"
        );
        let script = c["command"][2].as_str().unwrap();
        assert!(
            script.contains("+ 3000 ))"),
            "its own 30s deadline: {script}"
        );
        assert!(
            c.get("securityContext").is_none(),
            "a stressor needs no privilege"
        );
    }

    #[test]
    fn the_script_cleans_up_on_term_and_at_its_end() {
        assert_eq!(
            script(
                "tc qdisc del dev eth0 root handle fa17: 2>/dev/null",
                Duration::from_secs(70)
            ),
            "trap 'tc qdisc del dev eth0 root handle fa17: 2>/dev/null; exit 0' TERM INT; echo $$ > /tmp/faultline-net.pid || exit 1; sleep 70 & wait $!; tc qdisc del dev eth0 root handle fa17: 2>/dev/null; exit 0"
        );
    }

    #[test]
    fn helper_refs_round_trip() {
        let r = helper_ref("api-1", "faultline-net-0000abcd");
        assert_eq!(
            parse_helper_ref(&r),
            Some(("api-1", "faultline-net-0000abcd"))
        );
        assert_eq!(parse_helper_ref("nohelper"), None);
        assert!(helper_name().starts_with("faultline-net-"));
    }

    #[test]
    fn exit_codes_from_status() {
        let ok: Status = serde_json::from_value(serde_json::json!({"status": "Success"})).unwrap();
        assert_eq!(exit_code(&ok), Some(0));
        let two: Status = serde_json::from_value(serde_json::json!({
            "status": "Failure",
            "message": "command terminated with non-zero exit code: exit status 2",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": "2"}]}
        }))
        .unwrap();
        assert_eq!(exit_code(&two), Some(2));
        let missing: Status = serde_json::from_value(serde_json::json!({
            "status": "Failure",
            "message": "exec: \"tc\": executable file not found in $PATH",
            "reason": "InternalError"
        }))
        .unwrap();
        assert_eq!(exit_code(&missing), None);
    }

    /// The real shell: TERM runs the trap, which ends the script with 0.
    #[test]
    fn the_script_stops_on_term() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let s = script(
            "tc qdisc del dev eth0 root handle fa17: 2>/dev/null",
            Duration::from_secs(30),
        )
        .replace(PID_FILE, &pid_file.display().to_string())
        .replace("tc qdisc", "true qdisc");
        let mut child = std::process::Command::new("sh")
            .args(["-c", &s])
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while !pid_file.exists()
            || std::fs::read_to_string(&pid_file)
                .unwrap()
                .trim()
                .is_empty()
        {
            assert!(start.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(100));
        let stop = stop_command()[2].replace(PID_FILE, &pid_file.display().to_string());
        let st = std::process::Command::new("sh")
            .args(["-c", &stop])
            .status()
            .unwrap();
        assert!(st.success());
        let code = child.wait().unwrap();
        assert_eq!(code.code(), Some(0));
        assert!(start.elapsed() < Duration::from_secs(10));
    }
}
