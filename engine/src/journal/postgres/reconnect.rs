//! Reconnecting to the shared journal when its server restarts or the connection drops in the
//! middle of a run (issue 14).
//!
//! One connection per [`Database`](super::Database), behind a mutex. When it ends (the server
//! restarted, a PgBouncer or a network path in between dropped it), the next use connects
//! again in its place ([`ensure`]). A write that failed because of the connection is retried
//! with a short backoff ([`Backoff`]) by its caller, for as long as the caller may still
//! write: a controller under a lease retries until its self-fence deadline
//! ([`crate::execute::Shared`]) and no longer, so it never goes on believing it holds a lease
//! that could have expired.
//!
//! A retried write must not land twice: the reply to a commit that the server applied can be
//! lost with the connection. Commits are therefore numbered, and the number is kept on the
//! lease row in the same statement ([`super::commit`]): a retry of a commit that landed finds
//! its number there and writes nothing.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::Database;
use crate::journal::JournalError;

/// How long one connection attempt may take when the URL does not say (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What a new connection needs: the parsed URL and the TLS set-up, kept from the first one.
pub(crate) struct Connector {
    config: tokio_postgres::Config,
    tls: postgres_native_tls::MakeTlsConnector,
    /// Why the current connection ended, if it did (for messages).
    closed: Arc<Mutex<Option<String>>>,
    /// Which connection is the current one: an older one that ends late says nothing.
    current: Arc<AtomicU64>,
}

impl Connector {
    pub(crate) fn new(
        mut config: tokio_postgres::Config,
        tls: postgres_native_tls::MakeTlsConnector,
    ) -> Self {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        Self {
            config,
            tls,
            closed: Arc::new(Mutex::new(None)),
            current: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Why the current connection ended, if it did.
    pub(crate) fn closed(&self) -> Option<String> {
        self.closed.lock().expect("never poisoned").clone()
    }

    /// Opens a connection and drives it on the current runtime (call it on the journal's).
    pub(crate) async fn connect(&self) -> Result<Client, tokio_postgres::Error> {
        let (client, connection) = self.config.connect(self.tls.clone()).await?;
        let number = self.current.fetch_add(1, Ordering::SeqCst) + 1;
        *self.closed.lock().expect("never poisoned") = None;
        let closed = Arc::clone(&self.closed);
        let current = Arc::clone(&self.current);
        tokio::spawn(async move {
            let why = match connection.await {
                Ok(()) => "the connection was closed".to_owned(),
                Err(e) => e.to_string(),
            };
            if current.load(Ordering::SeqCst) == number {
                *closed.lock().expect("never poisoned") = Some(why);
            }
        });
        Ok(client)
    }
}

/// Makes sure `client` is a live connection: connects again in its place when it ended, or
/// always when `force` (an attempt on it timed out: it may hang behind a dead path).
pub(crate) async fn ensure(
    client: &tokio::sync::Mutex<Client>,
    connector: &Connector,
    force: bool,
) -> Result<(), tokio_postgres::Error> {
    let mut c = client.lock().await;
    if force || c.is_closed() {
        *c = connector.connect().await?;
    }
    Ok(())
}

/// Whether `e` is the connection's failure (worth a retry on a new one) rather than the
/// statement's: the connection closed or broke, the server is shutting down or starting
/// (SQLSTATE class 08, 57P01–57P03), or PgBouncer lost its server connection.
pub(crate) fn transient(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            let code = code.code();
            code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
        }
        // No SQLSTATE: an I/O error, a timeout or a broken connection, never the statement.
        None => e.as_db_error().is_none(),
    }
}

/// The pause between retries: 50 ms, doubling, at most 1 s (a local server restarts in about
/// a second; the lease's margin is seconds).
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            next: Duration::from_millis(50),
        }
    }
}

impl Backoff {
    pub(crate) fn pause(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(Duration::from_secs(1));
        now
    }
}

/// How long a try may wait for an answer once the deadline has passed: the one try a write
/// always gets (its epoch fences it, whatever the time).
const LAST_TRY: Duration = Duration::from_secs(2);

impl Database {
    /// Runs `f` with the client, as [`Database::run`], and when it fails because of the
    /// connection, again on a new connection after a pause, until `until`. Each try waits for
    /// its answer until `until` at most (and a connection that gave none is replaced). The
    /// first try is always made.
    pub(crate) fn retrying<T, F, Fut>(&self, until: Instant, f: F) -> Result<T, JournalError>
    where
        T: Send + 'static,
        F: Fn(Arc<tokio::sync::Mutex<Client>>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, tokio_postgres::Error>> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        let client = Arc::clone(&self.client);
        let connector = Arc::clone(&self.connector);
        self.runtime.spawn(async move {
            let began = Instant::now();
            let mut backoff = Backoff::default();
            let mut force = false;
            let mut tries = 0_u32;
            let answer = loop {
                tries += 1;
                let wait = until.saturating_duration_since(Instant::now());
                let wait = if wait.is_zero() { LAST_TRY } else { wait };
                let attempt = async {
                    ensure(&client, &connector, force).await?;
                    f(Arc::clone(&client)).await
                };
                let last = match tokio::time::timeout(wait, attempt).await {
                    Ok(Ok(v)) => break Ok(v),
                    Ok(Err(e)) if transient(&e) => {
                        force = false;
                        super::explain(&e, &connector)
                    }
                    Ok(Err(e)) => break Err(super::explain(&e, &connector)),
                    Err(_) => {
                        force = true;
                        format!("no answer within {:.1} s", wait.as_secs_f64())
                    }
                };
                let pause = backoff.pause();
                if Instant::now() + pause >= until {
                    break Err(format!(
                        "could not be reached for {:.1} s ({tries} tries), until this controller's lease could no longer be trusted (the TTL less the margin after its last renewal): {last}",
                        began.elapsed().as_secs_f64()
                    ));
                }
                tokio::time::sleep(pause).await;
            };
            let _ = tx.send(answer);
        });
        rx.recv()
            .map_err(|_| self.err("its runtime stopped"))?
            .map_err(|message| self.err(message))
    }
}

#[cfg(test)]
mod tests {
    use super::Backoff;
    use std::time::Duration;

    #[test]
    fn the_backoff_doubles_up_to_a_second() {
        let mut b = Backoff::default();
        let pauses: Vec<Duration> = (0..7).map(|_| b.pause()).collect();
        assert_eq!(
            pauses,
            [50, 100, 200, 400, 800, 1000, 1000].map(Duration::from_millis)
        );
    }
}
