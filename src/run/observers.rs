//! What a run yields beyond its reports: metrics (a textfile, a Pushgateway) and
//! notifications when runs start and end.

use std::path::PathBuf;

use crate::error::Error;
use crate::notify::{Notification, Notifier};
use crate::report::{self, RunResult};

/// Where the results go besides the reports.
#[derive(Clone, Debug, Default)]
pub struct ObserveOptions {
    /// The Prometheus textfile (node_exporter) with every run's metrics.
    pub metrics_file: Option<PathBuf>,
    /// A Pushgateway that gets each run's metrics.
    pub pushgateway: Option<String>,
    /// Webhooks told when a run starts and ends.
    pub notify: Vec<String>,
}

pub struct Observers {
    /// Built only when something is sent: loading the system's certificates would be
    /// most of a short run's start-up.
    client: Option<reqwest::Client>,
    notifier: Notifier,
    metrics_file: Option<PathBuf>,
    pushgateway: Option<String>,
}

impl Observers {
    pub fn new(o: &ObserveOptions) -> Result<Observers, Error> {
        let client = if o.notify.is_empty() && o.pushgateway.is_none() {
            None
        } else {
            Some(crate::notify::client().map_err(Error::Platform)?)
        };
        let notifier = match &client {
            Some(c) if !o.notify.is_empty() => {
                Notifier::new(&o.notify, c.clone()).map_err(Error::Usage)?
            }
            _ => Notifier::none(),
        };
        Ok(Observers {
            client,
            notifier,
            metrics_file: o.metrics_file.clone(),
            pushgateway: o.pushgateway.clone(),
        })
    }

    pub async fn started(&self, n: &Notification) {
        self.notifier.send(n).await;
    }

    /// After each run: the notification and the push (a failed push only warns).
    pub async fn finished(&self, result: &RunResult, n: &Notification) {
        self.notifier.send(n).await;
        if let (Some(url), Some(client)) = (&self.pushgateway, &self.client) {
            let text = report::metrics::render(std::slice::from_ref(result));
            if let Err(e) = report::metrics::push(client, url, &result.experiment.name, &text).await
            {
                tracing::warn!("cannot push metrics: {e}");
            }
        }
    }

    /// After all runs: the textfile with every run's metrics.
    pub fn write_metrics(&self, results: &[RunResult]) -> Result<(), Error> {
        if let Some(path) = &self.metrics_file {
            report::metrics::write_textfile(path, &report::metrics::render(results))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{ObserveOptions, Observers};

    /// The benchmark's finding: every run loaded the system's certificates for an HTTP
    /// client that nothing used.
    #[test]
    fn an_http_client_only_when_something_is_sent() {
        let quiet = Observers::new(&ObserveOptions::default()).unwrap();
        assert!(quiet.client.is_none() && quiet.notifier.is_empty());
        let push = Observers::new(&ObserveOptions {
            pushgateway: Some("http://127.0.0.1:9".into()),
            ..Default::default()
        })
        .unwrap();
        assert!(push.client.is_some() && push.notifier.is_empty());
        let notify = Observers::new(&ObserveOptions {
            notify: vec!["http://127.0.0.1:9/hook".into()],
            ..Default::default()
        })
        .unwrap();
        assert!(notify.client.is_some() && !notify.notifier.is_empty());
    }
}
