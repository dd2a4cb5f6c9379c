//! A local KMS server speaking the AWS KMS API for the tests. The shared one comes from
//! `scripts/start-kms.sh` (`KEYWARD_TEST_KMS_ENDPOINT`); a test that stops its server gets a
//! private one ([`Kms::private`]), a `moto_server` process of its own (`KEYWARD_TEST_MOTO_SERVER`).

use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use keyward_backend_aws_kms::{AwsKmsBackend, AwsKmsConfig};

use crate::services_required;

/// A KMS server a Keyward server can use.
#[derive(Debug)]
pub struct Kms {
    /// Its URL.
    pub endpoint: String,
    port: u16,
    process: Option<Mutex<Child>>,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The credentials the local server accepts (any value works; these are the conventional ones).
pub const CREDENTIALS: [(&str, &str); 3] =
    [("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"), ("AWS_REGION", "us-east-1")];

impl Kms {
    /// The shared server, or `None` (skip) when none runs and services are not required.
    /// Panics when required and missing.
    pub fn shared() -> Option<Self> {
        match var("KEYWARD_TEST_KMS_ENDPOINT") {
            Some(endpoint) => {
                let port = endpoint.rsplit(':').next().and_then(|p| p.parse().ok()).expect("endpoint port");
                Some(Self { endpoint, port, process: None })
            }
            None => {
                assert!(
                    !services_required(),
                    "no local KMS server but KEYWARD_REQUIRE_SERVICES=1: run scripts/start-kms.sh"
                );
                eprintln!("skipping: no local KMS server (run scripts/start-kms.sh or the full test command)");
                None
            }
        }
    }

    /// A server of this test's own, on a free port.
    pub fn private() -> Option<Self> {
        Self::shared()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
        let kms = Self { endpoint: format!("http://127.0.0.1:{port}"), port, process: Some(Mutex::new(spawn(port))) };
        kms.wait_ready();
        Some(kms)
    }

    /// A `[[backends]]` entry for this server.
    pub fn backend_toml(&self, name: &str) -> String {
        format!(
            "[[backends]]\nname = \"{name}\"\nkind = \"aws-kms\"\nregion = \"us-east-1\"\nendpoint = \"{}\"\n",
            self.endpoint
        )
    }

    /// A backend of the test's own, to look at the external side directly (credentials from
    /// the environment, as `scripts/start-kms.sh` exports them).
    pub fn inspector(&self) -> AwsKmsBackend {
        for (k, _) in CREDENTIALS {
            assert!(var(k).is_some(), "{k} is not set: scripts/start-kms.sh exports the local server's credentials");
        }
        AwsKmsBackend::connect(&AwsKmsConfig {
            region: "us-east-1".into(),
            endpoint: Some(self.endpoint.clone()),
            profile: None,
            timeout_ms: Some(5000),
            max_attempts: None,
            external_pending_window_days: None,
            // moto hashes DIGEST messages again.
            digest_messages: Some(false),
            // moto encrypts every key symmetrically, whatever the algorithm.
            rsa_encryption: Some(false),
        })
        .expect("inspector")
    }

    fn child(&self) -> std::sync::MutexGuard<'_, Child> {
        self.process.as_ref().expect("only a private server can be stopped").lock().expect("lock")
    }

    fn signal(&self, name: &str) {
        let pid = self.child().id().to_string();
        let ok = Command::new("kill").args([&format!("-{name}"), &pid]).status().expect("kill").success();
        assert!(ok, "kill -{name} {pid}");
    }

    /// Freezes the server: connections are accepted by the kernel but never answered.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Unfreezes it, with its keys.
    pub fn resume(&self) {
        self.signal("CONT");
    }

    /// Kills it: connections are refused. Its keys are lost (moto keeps them in memory).
    pub fn kill(&self) {
        let mut child = self.child();
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts a fresh server on the same port.
    pub fn start_again(&self) {
        *self.child() = spawn(self.port);
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not listen on {}", self.port);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Kms {
    fn drop(&mut self) {
        if let Some(p) = &self.process
            && let Ok(mut child) = p.lock()
        {
            let _ = Command::new("kill").args(["-CONT", &child.id().to_string()]).status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn(port: u16) -> Child {
    let bin = var("KEYWARD_TEST_MOTO_SERVER").expect("KEYWARD_TEST_MOTO_SERVER (set by scripts/start-kms.sh)");
    Command::new(bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server")
}
