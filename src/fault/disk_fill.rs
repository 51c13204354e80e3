//! `disk_fill`: a file written into the target's own filesystem at `path`, removed at
//! revert. The file's place is journaled before it is written, so `recover` removes it
//! after a crash.
//!
//! - `host`: written from this host through the container's root (`/proc/PID/root`),
//!   which sees the container's own mounts; no tool is needed in the image. The path is
//!   resolved by the kernel with the container's root as `/` (openat2, RESOLVE_IN_ROOT),
//!   so a symbolic link in the container, even one swapped in meanwhile, never leads onto
//!   this host; the file is created relative to that directory, never through a link.
//! - `exec`: `df`, `head -c` and `rm` inside the target (Docker: exec; Kubernetes: exec
//!   into the pod's target container, the only way there).
//!
//! It never writes more than the filesystem has free: `size` is refused above it, and
//! `percent` fills until `df`'s Use% reaches it.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::Path;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::cpu_stress::CpuAccess;
use super::{FaultKind, Injected, Prepared, Undo, UndoRecord};
use crate::experiment::model::{
    CpuStrategy, DiskFillFault, FaultProblems, FaultSpec, Target as TargetSpec, fault_timing,
};
use crate::experiment::units::{ByteSize, Percent};
use crate::platform::kubernetes::rbac::{self, Permission};
use crate::platform::{Platform, PlatformError, Target, host};

/// Prefix of the file's name.
pub const FILE_PREFIX: &str = ".faultline-fill-";

/// What revert needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FillRecord {
    /// The file, as an absolute path inside the target.
    pub file: String,
    pub access: CpuAccess,
    /// How many bytes it holds.
    pub bytes: u64,
}

/// A filesystem's size and use in bytes, as `df` counts them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Space {
    pub used: u64,
    /// Free for an unprivileged writer (`df`'s Available).
    pub available: u64,
}

impl Space {
    /// The bytes that bring `df`'s Use% (used / (used + available)) to `percent`.
    pub fn to_reach(self, percent: f64) -> Option<u64> {
        let goal = ((self.used + self.available) as f64 * percent / 100.0) as u64;
        goal.checked_sub(self.used).filter(|n| *n > 0)
    }

    pub fn use_percent(self) -> f64 {
        self.used as f64 * 100.0 / (self.used + self.available).max(1) as f64
    }
}

/// The second line of `df -P -k PATH`: size, used and available in KiB.
pub fn parse_df(stdout: &str) -> Option<Space> {
    let line = stdout.lines().nth(1)?;
    let f: Vec<&str> = line.split_whitespace().collect();
    let kib = |i: usize| f.get(i)?.parse::<u64>().ok().map(|v| v * 1024);
    Some(Space {
        used: kib(2)?,
        available: kib(3)?,
    })
}

pub(crate) fn human(bytes: u64) -> String {
    let mib = bytes as f64 / (1024.0 * 1024.0);
    if mib >= 1024.0 {
        format!("{:.1}GiB", mib / 1024.0)
    } else {
        format!("{mib:.1}MiB")
    }
}

/// The directory `path` of the target, opened through its root from this host and
/// resolved inside that root: a symbolic link in the container is followed as the
/// container would follow it and can never lead onto this host.
pub(crate) fn dir_in_root(
    root: &Path,
    path: &str,
    target: &Target,
) -> Result<OwnedFd, PlatformError> {
    host::open_dir_in_root(root, path).map_err(|e| {
        PlatformError::Refused(format!(
            "`{path}` in `{}` cannot be used as a directory: {e}",
            target.name
        ))
    })
}

fn host_space(dir: &OwnedFd, path: &str) -> Result<Space, PlatformError> {
    let s = nix::sys::statvfs::fstatvfs(dir).map_err(|e| {
        PlatformError::Refused(format!("cannot read the filesystem of `{path}`: {e}"))
    })?;
    let frsize = s.fragment_size() as u64;
    let total = s.blocks() as u64 * frsize;
    let free = s.blocks_free() as u64 * frsize;
    Ok(Space {
        used: total.saturating_sub(free),
        available: s.blocks_available() as u64 * frsize,
    })
}

/// Writes `bytes` into the new file `name` of `dir` (never an existing one, never through
/// a link).
fn write_file(dir: &OwnedFd, name: &str, bytes: u64) -> std::io::Result<()> {
    let mut f = host::create_in(dir, name, false)?;
    let block = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n])?;
        left -= n as u64;
    }
    f.sync_all()
}

pub(crate) fn sh(script: String) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script]
}

/// Single-quotes `s` for a POSIX shell.
pub(crate) fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

pub(crate) async fn space(
    platform: &dyn Platform,
    target: &Target,
    access: CpuAccess,
    path: &str,
) -> Result<Space, PlatformError> {
    match access {
        CpuAccess::Host => {
            let dir = dir_in_root(&platform.host_root(target).await?, path, target)?;
            host_space(&dir, path)
        }
        CpuAccess::Exec => {
            let p = quote(path);
            let out = platform
                .exec(
                    target,
                    &sh(format!(
                        "[ -d {p} ] || {{ echo notdir; exit 0; }}; df -P -k {p}"
                    )),
                )
                .await?;
            if out.stdout.trim() == "notdir" {
                return Err(PlatformError::Refused(format!(
                    "`{path}` in `{}` is not a directory",
                    target.name
                )));
            }
            parse_df(&out.stdout).ok_or_else(|| {
                PlatformError::Refused(format!(
                    "cannot read the free space of `{path}` in `{}` with `df`: {}",
                    target.name,
                    out.stderr.trim()
                ))
            })
        }
    }
}

/// The access `strategy` gets on `target` for the fault named `fault` ([`CpuAccess::chosen`]) and the space
/// of the filesystem at `path` through it: what a fault that writes files there starts from.
pub(crate) async fn access_and_space(
    platform: &dyn Platform,
    target: &Target,
    (strategy, fault): (CpuStrategy, &str),
    path: &str,
) -> Result<(CpuAccess, Space), PlatformError> {
    let access = CpuAccess::chosen(strategy, platform, target, fault).await?;
    Ok((access, space(platform, target, access, path).await?))
}

/// How much a fault sized by `size` or `percent` asks for, as its description says it:
/// the size, else the percent as `of_percent` words it.
pub(crate) fn amount(
    size: Option<&ByteSize>,
    percent: Option<Percent>,
    of_percent: impl FnOnce(Percent) -> String,
) -> String {
    match (size, percent) {
        (Some(s), _) => s.to_string(),
        (None, Some(p)) => of_percent(p),
        (None, None) => "?".into(),
    }
}

/// Checks that a fault sized by `size` or `percent` (`fault` names it) has exactly one,
/// and a percent above 0; `needs` says what it needs when it has neither.
pub(crate) fn validate_amount(
    p: &mut FaultProblems,
    fault: &str,
    (size, percent): (Option<&ByteSize>, Option<Percent>),
    needs: &str,
) {
    match (size, percent) {
        (Some(_), Some(_)) => p.err(format!(
            "{fault} takes `size` or `percent`, not both: remove one"
        )),
        (None, None) => p.err(format!("{fault} {needs}")),
        (None, Some(pc)) if pc.0 <= 0.0 => p.err_at("percent", "`percent` must be above 0"),
        _ => {}
    }
}

impl FaultSpec for DiskFillFault {
    fault_timing!("disk_fill");

    fn describe(&self) -> String {
        format!(
            "disk_fill {} at {} for {}",
            amount(self.size.as_ref(), self.percent, |p| format!("to {p} full")),
            self.path,
            self.duration
        )
    }

    fn validate(&self, _target: &TargetSpec, p: &mut FaultProblems) {
        p.positive("duration", self.duration);
        validate_amount(
            p,
            "disk_fill",
            (self.size.as_ref(), self.percent),
            "needs how much: `size: 1GiB`, or `percent: 90` to fill the filesystem until it is 90% full",
        );
        p.target_dir("path", &self.path);
    }
}

#[async_trait]
impl FaultKind for DiskFillFault {
    async fn prepare(&self, platform: &dyn Platform, target: &Target) -> Prepared {
        let strategy = (self.strategy, self.name());
        let (access, free) = access_and_space(platform, target, strategy, &self.path).await?;
        let bytes = match (&self.size, self.percent) {
            (Some(size), _) => {
                if size.bytes > free.available {
                    return Err(PlatformError::Refused(format!(
                        "`size` {size} is more than the {} the filesystem at `{}` in `{}` has free: ask for less, or use `percent`",
                        human(free.available),
                        self.path,
                        target.name
                    )));
                }
                size.bytes
            }
            (None, Some(pc)) => free.to_reach(pc.0).ok_or_else(|| {
                PlatformError::Refused(format!(
                    "the filesystem at `{}` in `{}` is already {:.0}% full, at or above the {pc} asked",
                    self.path,
                    target.name,
                    free.use_percent()
                ))
            })?,
            (None, None) => return Err(super::mismatched(self)),
        };
        let file = format!(
            "{}/{FILE_PREFIX}{:016x}",
            self.path.trim_end_matches('/'),
            rand::random::<u64>()
        );
        Ok(Some(Undo::new(UndoRecord::RemoveFile {
            target: target.clone(),
            fill: FillRecord {
                file,
                access,
                bytes,
            },
        })))
    }

    async fn inject(&self, platform: &dyn Platform, target: &Target, u: Option<&Undo>) -> Injected {
        let fill = super::undo_part!(u, RemoveFile { fill }, self);
        match fill.access {
            CpuAccess::Host => {
                let dir = dir_in_root(&platform.host_root(target).await?, &self.path, target)?;
                let name = fill.file.rsplit('/').next().unwrap_or_default().to_string();
                let bytes = fill.bytes;
                tokio::task::spawn_blocking(move || write_file(&dir, &name, bytes))
                    .await
                    .map_err(|e| PlatformError::Refused(e.to_string()))?
                    .map_err(|e| {
                        PlatformError::Refused(format!(
                            "cannot write {} into `{}` of `{}`: {e}",
                            human(bytes),
                            self.path,
                            target.name
                        ))
                    })
            }
            CpuAccess::Exec => {
                let out = platform
                    .exec(
                        target,
                        &sh(format!(
                            "head -c {} /dev/zero > {} && sync",
                            fill.bytes,
                            quote(&fill.file)
                        )),
                    )
                    .await?;
                if out.code == 0 {
                    Ok(())
                } else {
                    Err(PlatformError::Refused(format!(
                        "cannot write {} into `{}` of `{}`: {}",
                        human(fill.bytes),
                        self.path,
                        target.name,
                        out.stderr.trim()
                    )))
                }
            }
        }
    }

    fn kubernetes_note(&self) -> Option<&'static str> {
        Some(
            "# disk_fill runs `df`, `head` and `rm` in the target container through exec: its\n\
             # image needs them (and `sh`).\n",
        )
    }

    /// The target pod read for its container, and exec into it.
    fn rbac(&self) -> &'static [Permission] {
        rbac::EXEC_IN_TARGET
    }
}

/// Removes the file and confirms it is gone (a file already gone is fine).
pub async fn revert(
    platform: &dyn Platform,
    target: &Target,
    fill: &FillRecord,
) -> Result<(), PlatformError> {
    let (dir, name) = fill.file.rsplit_once('/').unwrap_or(("", &fill.file));
    let what = "faultline's fill file";
    remove_files(platform, target, fill.access, (dir, &[name]), what).await
}

/// `name` in the directory `dir` of the target.
fn in_dir(dir: &str, name: &str) -> String {
    format!("{}/{name}", dir.trim_end_matches('/'))
}

/// Removes the files `names` of the directory `dir` in the target and confirms they are
/// gone (files already gone are fine, and so is their directory gone); `what` names them
/// in messages. The host access removes them through the target's root, never through a
/// link.
pub(crate) async fn remove_files(
    platform: &dyn Platform,
    target: &Target,
    access: CpuAccess,
    (dir, names): (&str, &[&str]),
    what: &str,
) -> Result<(), PlatformError> {
    match access {
        CpuAccess::Host => {
            let fd = match host::open_dir_in_root(&platform.host_root(target).await?, dir) {
                Ok(fd) => fd,
                // The directory itself is gone: so are the files.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => {
                    return Err(PlatformError::Refused(format!(
                        "cannot reach `{dir}` in `{}` to remove {what}: {e}",
                        target.name
                    )));
                }
            };
            for name in names {
                host::remove_in(&fd, name).map_err(|e| {
                    PlatformError::Refused(format!(
                        "cannot remove {} from `{}`: {e}",
                        in_dir(dir, name),
                        target.name
                    ))
                })?;
            }
            Ok(())
        }
        CpuAccess::Exec => {
            let files: Vec<String> = names.iter().map(|n| quote(&in_dir(dir, n))).collect();
            let files = files.join(" ");
            let out = platform
                .exec(
                    target,
                    &sh(format!(
                        "rm -f {files}; for f in {files}; do [ -e \"$f\" ] && echo left; done; echo done"
                    )),
                )
                .await?;
            match out.stdout.trim() {
                "done" => Ok(()),
                _ => Err(out.failure(
                    target,
                    &format!("cannot remove {what} from `{dir}` in `{}`", target.name),
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn df_lines_and_the_bytes_to_reach_a_percentage() {
        let df = "Filesystem 1024-blocks Used Available Capacity Mounted on\n\
                  tmpfs 65536 16384 49152 25% /fill\n";
        let s = parse_df(df).unwrap();
        assert_eq!(s.used, 16 << 20);
        assert_eq!(s.available, 48 << 20);
        assert_eq!(s.use_percent(), 25.0);
        let n = s.to_reach(90.0).unwrap();
        assert_eq!(n, (64u64 << 20) * 9 / 10 - (16 << 20));
        assert_eq!(s.to_reach(20.0), None, "already above");
        assert_eq!(parse_df("garbage"), None);
    }

    #[test]
    fn paths_are_quoted_for_the_shell() {
        assert_eq!(quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(quote("/x'y"), "'/x'\\''y'");
    }

    fn web() -> Target {
        crate::platform::fake::target("web")
    }

    /// A container's links, absolute or climbing with `..`, end inside its root: the
    /// file lands in the container's directory, never in this host's.
    #[test]
    fn symbolic_links_resolve_inside_the_containers_root() {
        let host = tempfile::tempdir().unwrap();
        let outside = host.path().join("host-dir");
        std::fs::create_dir(&outside).unwrap();
        let root = host.path().join("root");
        std::fs::create_dir_all(root.join(outside.strip_prefix("/").unwrap())).unwrap();
        // The container's /evil names the host's directory by its absolute path; its
        // /climb climbs far above its root.
        std::os::unix::fs::symlink(&outside, root.join("evil")).unwrap();
        std::os::unix::fs::symlink("../../../../../..", root.join("climb")).unwrap();
        for path in ["/evil", "/climb/evil"] {
            let dir = dir_in_root(&root, path, &web()).unwrap();
            write_file(&dir, ".faultline-fill-test", 4096).unwrap();
            let inside = root
                .join(outside.strip_prefix("/").unwrap())
                .join(".faultline-fill-test");
            assert!(inside.exists(), "{path}: the file is in the container");
            assert!(
                std::fs::read_dir(&outside).unwrap().next().is_none(),
                "{path}: nothing was written on the host"
            );
            host::remove_in(&dir, ".faultline-fill-test").unwrap();
            assert!(!inside.exists());
        }
        // A link to where the container has nothing is refused, not followed onto the host.
        std::os::unix::fs::symlink("/etc", root.join("etc-link")).unwrap();
        let e = dir_in_root(&root, "/etc-link", &web())
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot be used as a directory"), "{e}");
        // The file itself is never a link, nor an existing file.
        let dir = dir_in_root(&root, "/", &web()).unwrap();
        std::os::unix::fs::symlink(outside.join("x"), root.join(".faultline-fill-l")).unwrap();
        assert!(write_file(&dir, ".faultline-fill-l", 10).is_err());
        assert!(!outside.join("x").exists());
    }
}
