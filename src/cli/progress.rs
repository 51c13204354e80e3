//! Progress on stderr, only on a terminal: the phase, and a countdown while faults are active.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::run::Observer;

pub(super) struct Progress {
    bar: ProgressBar,
    phase: Mutex<(String, Option<Instant>)>,
}

impl Progress {
    /// A spinner on stderr, or `None` when stderr is not a terminal.
    pub(super) fn on_terminal() -> Option<std::sync::Arc<Progress>> {
        use std::io::IsTerminal;
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix:.bold} {wide_msg}")
                .expect("a valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        let p = std::sync::Arc::new(Progress {
            bar,
            phase: Mutex::new((String::new(), None)),
        });
        let ticker = std::sync::Arc::downgrade(&p);
        std::thread::spawn(move || {
            while let Some(p) = ticker.upgrade() {
                p.refresh();
                drop(p);
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        Some(p)
    }

    fn refresh(&self) {
        let (detail, deadline) = self.phase.lock().expect("not poisoned").clone();
        let countdown = deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
            .map(|left| format!(" ({:.1}s left)", left.as_secs_f64()))
            .unwrap_or_default();
        self.bar.set_message(format!("{detail}{countdown}"));
    }
}

impl Observer for Progress {
    fn phase(&self, phase: &str, detail: &str, window: Option<Duration>) {
        self.bar.set_prefix(phase.to_string());
        *self.phase.lock().expect("not poisoned") =
            (detail.to_string(), window.map(|w| Instant::now() + w));
        self.refresh();
    }

    fn done(&self) {
        self.bar.finish_and_clear();
    }
}
