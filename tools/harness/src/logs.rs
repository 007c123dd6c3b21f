//! Captures every log line of the test process (JSON, as in Lambda) so tests can scan them: all
//! of them ([`captured`]), or those of the calling test alone ([`captured_here`]).

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, Once};

static BUFFER: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static INSTALL: Once = Once::new();
/// The lines written on each named thread but tokio's workers and `main`: libtest runs every test
/// on a thread of its own named after the test.
static BY_THREAD: Mutex<Option<HashMap<String, Vec<u8>>>> = Mutex::new(None);

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        BUFFER.lock().expect("log buffer").extend_from_slice(buf);
        if let Some(name) = std::thread::current().name()
            && !matches!(name, "tokio-runtime-worker" | "main")
        {
            BY_THREAD
                .lock()
                .expect("log buffer")
                .get_or_insert_with(HashMap::new)
                .entry(name.to_owned())
                .or_default()
                .extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the capturing subscriber once per test process: debug for our crates, info for the
/// rest (the AWS SDK and hyper included), JSON lines as the functions write them in Lambda.
pub fn install() {
    INSTALL.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::new("info,psa_domain=debug,psa_store=debug,psa_secrets=debug,psa_gradient=debug,psa_http=debug,connectors_api=debug,sync_worker=debug");
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(|| Capture)
            .try_init() // a binary (`serve`) may have installed its own
            .ok();
    });
}

/// Everything logged so far in the process, by every test (for scans that nothing leaks).
pub fn captured() -> String {
    String::from_utf8_lossy(&BUFFER.lock().expect("log buffer")).into_owned()
}

/// What the calling test logged so far: the lines written on its own thread, which runs the test's
/// future (and, on the default current-thread runtime, everything it spawns), so what other tests
/// in the process log is not in it. Lines of tasks spawned onto a multi-thread runtime's workers
/// are only in [`captured`].
pub fn captured_here() -> String {
    let name = std::thread::current().name().unwrap_or_default().to_owned();
    BY_THREAD
        .lock()
        .expect("log buffer")
        .as_ref()
        .and_then(|m| m.get(&name))
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

/// The EMF records one environment's in-process core writes: each [`crate::TestEnv`] has its own,
/// so a test reads only its own records while others run in the same process.
#[derive(Clone, Default)]
pub struct Emf(Arc<Mutex<Vec<String>>>);

impl Emf {
    /// Keeps one EMF record (a JSON line).
    pub fn record(&self, line: &str) {
        self.0.lock().expect("metrics buffer").push(line.to_owned());
    }

    /// Every record kept so far, parsed.
    pub fn records(&self) -> Vec<serde_json::Value> {
        self.0
            .lock()
            .expect("metrics buffer")
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}
