//! Which engine answers a Docker API endpoint — Docker itself, or Podman's
//! Docker-compatible service — and what that changes for faults: Podman names itself in
//! `/version` (a component `Podman Engine`), a rootless engine says so in `/info`
//! (`name=rootless`), and a rootless engine on cgroup v1 has no freezer to pause with.

use bollard::Docker;
use bollard::models::{ResourcesUlimits, SystemInfo, SystemVersion};

/// The engine behind an endpoint, from its `/version` and `/info` answers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Engine {
    pub podman: bool,
    pub version: String,
    pub api_version: String,
    /// The engine runs without root (its containers' cgroups are delegated to a user).
    pub rootless: bool,
    /// `1` or `2`, when the engine says.
    pub cgroup_version: Option<String>,
}

impl Engine {
    /// Reads the engine's answers. `info` may be missing: an engine whose `/info` does not
    /// parse is taken for rootful, as it says nothing else.
    pub fn from_answers(version: &SystemVersion, info: Option<&SystemInfo>) -> Engine {
        let named_podman = |name: &str| name.to_ascii_lowercase().contains("podman");
        let podman = version
            .components
            .iter()
            .flatten()
            .any(|c| named_podman(&c.name))
            || version
                .platform
                .as_ref()
                .is_some_and(|p| named_podman(&p.name));
        // Docker says so among its security options; Podman's compatible `/info` has a
        // field of its own (`Rootless`) that the Docker model lacks, but a rootless Podman
        // keeps its storage in the user's home (`~/.local/share/containers`).
        let rootless = info.is_some_and(|i| {
            i.security_options
                .iter()
                .flatten()
                .any(|o| o == "name=rootless")
                || (podman
                    && i.docker_root_dir
                        .as_deref()
                        .is_some_and(|d| d.contains("/.local/share/containers")))
        });
        let cgroup_version = info
            .and_then(|i| i.cgroup_version.as_ref())
            .map(|v| v.to_string())
            .filter(|v| !v.is_empty());
        Engine {
            podman,
            version: version.version.clone().unwrap_or_default(),
            api_version: version.api_version.clone().unwrap_or_default(),
            rootless,
            cgroup_version,
        }
    }

    /// `Docker` or `Podman`.
    pub fn name(&self) -> &'static str {
        if self.podman { "Podman" } else { "Docker" }
    }

    /// Why containers cannot be paused on this engine, if they cannot: a rootless engine
    /// on cgroup v1 is not given the freezer controller.
    pub fn freeze_refusal(&self, host: &str) -> Option<String> {
        (self.rootless && self.cgroup_version.as_deref() == Some("1")).then(|| {
            format!(
                "{} at {host} runs rootless on cgroup v1, where the cgroup freezer is not delegated to it: its containers cannot be paused; run the engine as root, or on a cgroup v2 host with systemd delegation",
                self.name()
            )
        })
    }

    /// What works on this engine, in a line for `doctor`.
    pub fn works(&self, host: &str) -> String {
        let mut notes = Vec::new();
        if self.podman {
            notes.push(
                "Podman's Docker-compatible API: every Docker fault works through it; helper containers (network sidecars) are created with the target's own ulimits, since Podman's default file limit can exceed the host's".to_string(),
            );
        }
        match self.freeze_refusal(host) {
            Some(why) => notes.push(format!("pause is refused: {why}")),
            None if self.rootless => {
                notes.push("rootless: pause works (cgroup v2); host strategies need the engine's user namespace, so use `strategy: sidecar` or `exec`".into());
            }
            None => {}
        }
        if notes.is_empty() {
            notes.push("every fault works".into());
        }
        notes.join("; ")
    }
}

/// Asks the engine who it is: `/version` and `/info` at once (a failing `/info` only leaves the
/// rootless and cgroup facts unknown).
pub async fn engine(docker: &Docker) -> Result<Engine, bollard::errors::Error> {
    let (version, info) = tokio::join!(docker.version(), docker.info());
    Ok(Engine::from_answers(&version?, info.ok().as_ref()))
}

/// The limits a helper container is created with on Podman: the target's own `nofile`
/// and `nproc` (they work on its host, since the target runs), as Podman's defaults can
/// exceed the hard limit of the host and then no container starts. Docker names them
/// `nofile`; Podman's inspect says `RLIMIT_NOFILE`.
pub fn helper_ulimits(target: &[ResourcesUlimits]) -> Vec<ResourcesUlimits> {
    target
        .iter()
        .filter_map(|u| {
            let name = u.name.as_deref()?.to_ascii_lowercase();
            let name = name.trim_start_matches("rlimit_").to_string();
            matches!(name.as_str(), "nofile" | "nproc").then(|| ResourcesUlimits {
                name: Some(name),
                soft: u.soft,
                hard: u.hard,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{SystemInfoCgroupVersionEnum, SystemVersionComponents};

    fn version(component: &str) -> SystemVersion {
        SystemVersion {
            components: Some(vec![SystemVersionComponents {
                name: component.into(),
                version: "4.3.1".into(),
                details: None,
            }]),
            version: Some("4.3.1".into()),
            api_version: Some("1.41".into()),
            ..Default::default()
        }
    }

    #[test]
    fn podman_names_itself_in_its_components() {
        let e = Engine::from_answers(&version("Podman Engine"), None);
        assert!(e.podman);
        assert_eq!(e.name(), "Podman");
        assert_eq!(e.api_version, "1.41");
        assert!(!Engine::from_answers(&version("Engine"), None).podman);
        assert_eq!(e.freeze_refusal("unix:///x"), None);
        assert!(e.works("unix:///x").contains("ulimits"));
    }

    #[test]
    fn rootless_on_cgroup_v1_cannot_pause() {
        let info = |opts: &[&str], v: SystemInfoCgroupVersionEnum| SystemInfo {
            security_options: Some(opts.iter().map(|s| s.to_string()).collect()),
            cgroup_version: Some(v),
            ..Default::default()
        };
        let v = version("Podman Engine");
        let podman = |info: SystemInfo| Engine::from_answers(&v, Some(&info));
        let rootless_v1 = podman(info(
            &["name=seccomp,profile=default", "name=rootless"],
            SystemInfoCgroupVersionEnum::_1,
        ));
        assert!(rootless_v1.rootless);
        let why = rootless_v1.freeze_refusal("unix:///run/user/1000/podman/podman.sock");
        assert!(
            why.as_deref()
                .is_some_and(|w| w.contains("Podman") && w.contains("cgroup v1")),
            "{why:?}"
        );
        assert!(rootless_v1.works("h").contains("pause is refused"));
        // Podman 4 says `Rootless: true` in a field of its own; its storage in the
        // user's home says the same through the Docker model.
        let stored_in = |dir: &str| SystemInfo {
            docker_root_dir: Some(dir.into()),
            cgroup_version: Some(SystemInfoCgroupVersionEnum::_1),
            ..Default::default()
        };
        let podman_rootless = podman(stored_in("/home/u/.local/share/containers/storage"));
        assert!(podman_rootless.freeze_refusal("h").is_some());
        let podman_rootful = podman(stored_in("/var/lib/containers/storage"));
        assert!(!podman_rootful.rootless);
        let rootless_v2 = podman(info(&["name=rootless"], SystemInfoCgroupVersionEnum::_2));
        assert_eq!(rootless_v2.freeze_refusal("h"), None);
        let rootful_v1 = podman(info(&["name=seccomp"], SystemInfoCgroupVersionEnum::_1));
        assert_eq!(rootful_v1.freeze_refusal("h"), None);
    }

    #[test]
    fn helpers_take_the_targets_file_and_process_limits() {
        let limit = |n: &str, v: i64| ResourcesUlimits {
            name: Some(n.into()),
            soft: Some(v),
            hard: Some(v),
        };
        let got = helper_ulimits(&[
            limit("RLIMIT_NOFILE", 20000),
            limit("RLIMIT_NPROC", 30000),
            limit("RLIMIT_CORE", 0),
        ]);
        assert_eq!(got, [limit("nofile", 20000), limit("nproc", 30000)]);
        assert_eq!(helper_ulimits(&[limit("nofile", 5)]), [limit("nofile", 5)]);
    }
}
