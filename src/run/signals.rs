//! Signals during a run: the first SIGINT or SIGTERM reverts everything, a second says
//! what is still being reverted, a third quits and leaves the rest to `recover`.

use tokio_util::sync::CancellationToken;

use super::Records;
use crate::error::Exit;

/// The first SIGINT or SIGTERM cancels the token (every active fault is reverted). A
/// second one says what is still being reverted; a third quits at once and leaves the
/// rest to `faultline recover` (and to the dead-man's switch).
pub(super) fn on_signals(token: CancellationToken, records: Records) {
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        let mut count = 0;
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            count += 1;
            match count {
                1 => {
                    eprintln!("faultline: interrupted: reverting every active fault...");
                    token.cancel();
                }
                2 => {
                    let open: Vec<String> = records
                        .journal
                        .open_entries()
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|e| e.run == records.run_id)
                        .map(|e| format!("{} on {}", e.fault, e.undo.target().name))
                        .collect();
                    if open.is_empty() {
                        eprintln!("faultline: still finishing; nothing is left to revert");
                    } else {
                        eprintln!("faultline: still reverting: {}", open.join(", "));
                    }
                    eprintln!(
                        "faultline: interrupt once more to quit now and leave the rest to `faultline recover`"
                    );
                }
                _ => {
                    eprintln!(
                        "faultline: quitting; run `faultline recover` to revert what is left (journal {})",
                        records.journal.path().display()
                    );
                    std::process::exit(Exit::Interrupted.code().into());
                }
            }
        }
    });
}
