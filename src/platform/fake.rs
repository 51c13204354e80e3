//! An in-memory platform for the lifecycle and session tests: targets are names,
//! every operation is logged, failures are switched on per operation.

use std::sync::Mutex as StdMutex;
use std::time::Duration as StdDuration;

use async_trait::async_trait;

use super::{ExecOutput, Platform, PlatformError, Target};
use crate::experiment::units::{Duration, Signal};

/// A platform whose targets live in memory; failures are switched on per operation.
#[derive(Default)]
pub(crate) struct Fake {
    /// What successive listings return (the last one repeats); empty: `a` and `b`.
    pub(crate) listings: StdMutex<Vec<Vec<&'static str>>>,
    pub(crate) paused: StdMutex<Vec<String>>,
    pub(crate) log: StdMutex<Vec<String>>,
    pub(crate) fail_pause: bool,
    /// The pause takes effect but its call fails (a daemon answering after the timeout).
    pub(crate) pause_times_out: bool,
    pub(crate) fail_unpause: bool,
    pub(crate) vanish_on_unpause: bool,
    /// Targets keep running through a kill (a PID 1 that ignores the signal).
    pub(crate) survives_kills: bool,
    /// A killed target leaves the platform this long after the kill (a deleted pod
    /// terminating); `None`: a kill is over when it returns.
    pub(crate) gone_after: Option<StdDuration>,
    /// What `kind` answers (`fake` by default), e.g. `kubernetes` for a platform check.
    pub(crate) kind: Option<&'static str>,
    /// Each listing takes this long (a slow daemon).
    pub(crate) list_delay: Option<StdDuration>,
    /// Listing fails (an unreachable daemon).
    pub(crate) fail_listing: bool,
}

pub(crate) fn target(name: &str) -> Target {
    Target {
        platform: "fake".into(),
        id: format!("id-{name}"),
        name: name.into(),
        labels: Default::default(),
    }
}

#[async_trait]
impl Platform for Fake {
    fn kind(&self) -> &'static str {
        self.kind.unwrap_or("fake")
    }
    fn endpoint(&self) -> String {
        "memory".into()
    }
    async fn discover(&self) -> Result<Vec<Target>, PlatformError> {
        if let Some(d) = self.list_delay {
            tokio::time::sleep(d).await;
        }
        if self.fail_listing {
            return Err(PlatformError::Unavailable(
                "the daemon does not answer".into(),
            ));
        }
        let mut listings = self.listings.lock().unwrap();
        let names = match listings.len() {
            0 => vec!["a", "b"],
            1 => listings[0].clone(),
            _ => listings.remove(0),
        };
        Ok(names.into_iter().map(target).collect())
    }
    async fn signal(
        &self,
        t: &Target,
        s: Signal,
        _: Option<Duration>,
    ) -> Result<(), PlatformError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("kill {} {s}", t.name));
        Ok(())
    }
    async fn freeze(&self, t: &Target, _lifetime: StdDuration) -> Result<(), PlatformError> {
        if self.fail_pause {
            return Err(PlatformError::Unavailable("daemon went away".into()));
        }
        if self.paused.lock().unwrap().contains(&t.name) {
            return Err(super::already_frozen(t));
        }
        self.paused.lock().unwrap().push(t.name.clone());
        if self.pause_times_out {
            return Err(PlatformError::Unavailable("no answer within 30s".into()));
        }
        self.log.lock().unwrap().push(format!("pause {}", t.name));
        Ok(())
    }
    async fn thaw(&self, t: &Target) -> Result<(), PlatformError> {
        if self.vanish_on_unpause {
            return Err(PlatformError::Gone(t.name.clone()));
        }
        if self.fail_unpause {
            return Err(PlatformError::Unavailable("daemon went away".into()));
        }
        self.paused.lock().unwrap().retain(|n| n != &t.name);
        self.log.lock().unwrap().push(format!("unpause {}", t.name));
        Ok(())
    }
    async fn until_gone(&self, _t: &Target, _timeout: StdDuration) -> Result<bool, PlatformError> {
        match self.gone_after {
            Some(d) => {
                tokio::time::sleep(d).await;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn running_since(
        &self,
        _t: &Target,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, PlatformError> {
        // Started long before any kill, or not running at all.
        Ok(self
            .survives_kills
            .then(|| chrono::DateTime::<chrono::Utc>::UNIX_EPOCH))
    }

    async fn is_frozen(&self, t: &Target) -> Result<bool, PlatformError> {
        Ok(self.paused.lock().unwrap().contains(&t.name))
    }

    fn can_exec(&self) -> bool {
        true
    }

    /// Logs `exec NAME argv...`; exits 0, or 1 when the command is `false`.
    async fn exec(&self, t: &Target, argv: &[String]) -> Result<ExecOutput, PlatformError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("exec {} {}", t.name, argv.join(" ")));
        let code = i64::from(argv.first().is_some_and(|a| a == "false"));
        Ok(ExecOutput {
            code,
            stdout: format!("ran in {}\n", t.name),
            stderr: String::new(),
        })
    }
}
