//! SoftHSM2 for the tests. The shared token comes from `scripts/start-softhsm.sh`
//! (`SOFTHSM2_CONF`, `KEYWARD_TEST_PKCS11_*`); this process inspects it directly through
//! PKCS#11. A test that breaks its token gets a private one ([`Hsm::private`]): its own token
//! directory, seen only by the server it starts.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;

use crate::services_required;

/// A token a server can use.
#[derive(Debug)]
pub struct Hsm {
    /// The PKCS#11 module.
    pub module: PathBuf,
    /// The token label.
    pub label: String,
    /// A file holding the user PIN.
    pub pin_file: PathBuf,
    /// `SOFTHSM2_CONF` for the server.
    pub conf: PathBuf,
    /// The private token directory (absent for the shared token).
    private: Option<tempfile::TempDir>,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Hsm {
    /// The shared token, or `None` (skip) when none is provisioned and services are not
    /// required. Panics when required and missing.
    pub fn shared() -> Option<Self> {
        match (
            var("KEYWARD_TEST_PKCS11_MODULE"),
            var("KEYWARD_TEST_PKCS11_TOKEN"),
            var("KEYWARD_TEST_PKCS11_PIN_FILE"),
            var("SOFTHSM2_CONF"),
        ) {
            (Some(module), Some(label), Some(pin), Some(conf)) => {
                Some(Self { module: module.into(), label, pin_file: pin.into(), conf: conf.into(), private: None })
            }
            _ => {
                assert!(
                    !services_required(),
                    "no SoftHSM2 token but KEYWARD_REQUIRE_SERVICES=1: run scripts/start-softhsm.sh"
                );
                eprintln!("skipping: no SoftHSM2 token (run scripts/start-softhsm.sh or the full test command)");
                None
            }
        }
    }

    /// A new token in its own directory (needs `softhsm2-util`).
    pub fn private() -> Option<Self> {
        let shared = Self::shared()?;
        let dir = tempfile::tempdir().expect("tempdir");
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).expect("tokens dir");
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!("directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n", tokens.display()),
        )
        .expect("conf");
        let pin_file = dir.path().join("pin");
        std::fs::write(&pin_file, "4321\n").expect("pin");
        let out = Command::new("softhsm2-util")
            .args(["--init-token", "--free", "--label", "private", "--so-pin", "87654321", "--pin", "4321"])
            .env("SOFTHSM2_CONF", &conf)
            .output()
            .expect("softhsm2-util");
        assert!(out.status.success(), "init token: {}", String::from_utf8_lossy(&out.stderr));
        Some(Self { module: shared.module, label: "private".into(), pin_file, conf, private: Some(dir) })
    }

    /// A `[[backends]]` entry for this token.
    pub fn backend_toml(&self, name: &str) -> String {
        format!(
            "[[backends]]\nname = \"{name}\"\nkind = \"pkcs11\"\nmodule = \"{}\"\ntoken_label = \"{}\"\npin_file = \"{}\"\n",
            self.module.display(),
            self.label,
            self.pin_file.display()
        )
    }

    /// The environment a server needs to see this token.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![("SOFTHSM2_CONF", self.conf.display().to_string())]
    }

    fn tokens(&self) -> (PathBuf, PathBuf) {
        let dir = self.private.as_ref().expect("only a private token can be taken away").path();
        (dir.join("tokens"), dir.join("tokens.away"))
    }

    /// Makes the token disappear (its directory moves away).
    pub fn take_away(&self) {
        let (here, away) = self.tokens();
        std::fs::rename(here, away).expect("move token away");
    }

    /// Brings the token back.
    pub fn bring_back(&self) {
        let (here, away) = self.tokens();
        std::fs::rename(away, here).expect("bring token back");
    }
}

/// What the shared token says about the object with a CKA_ID.
#[derive(Debug, PartialEq, Eq)]
pub struct ObjectFacts {
    /// Whether the object exists.
    pub found: bool,
    /// Whether CKA_VALUE (the key bytes) could be read.
    pub value_readable: bool,
    /// CKA_SENSITIVE.
    pub sensitive: Option<bool>,
    /// CKA_EXTRACTABLE.
    pub extractable: Option<bool>,
}

fn context(module: &Path) -> &'static Mutex<Pkcs11> {
    static CTX: OnceLock<Mutex<Pkcs11>> = OnceLock::new();
    CTX.get_or_init(|| {
        let ctx = Pkcs11::new(module).expect("load module");
        ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)).expect("C_Initialize");
        Mutex::new(ctx)
    })
}

impl Hsm {
    fn session(&self, ctx: &Pkcs11) -> cryptoki::session::Session {
        assert!(self.private.is_none(), "inspect the shared token only");
        let slot = ctx
            .get_slots_with_token()
            .expect("slots")
            .into_iter()
            .find(|s| ctx.get_token_info(*s).is_ok_and(|i| i.label().trim_end() == self.label))
            .expect("token by label");
        let session = ctx.open_ro_session(slot).expect("session");
        let pin = std::fs::read_to_string(&self.pin_file).expect("pin");
        match session.login(UserType::User, Some(&AuthPin::from(pin.trim().to_owned()))) {
            Ok(()) | Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => panic!("login: {e}"),
        }
        session
    }

    /// The CKA_ID of the secret key labelled `label` in the shared token.
    pub fn inspect_label(&self, label: &str) -> Vec<u8> {
        let ctx = context(&self.module).lock().expect("ctx");
        let session = self.session(&ctx);
        let found = session
            .find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY), Attribute::Label(label.as_bytes().to_vec())])
            .expect("find");
        let handle = *found.first().expect("a key with that label");
        match session.get_attributes(handle, &[AttributeType::Id]).expect("id").pop() {
            Some(Attribute::Id(id)) => id,
            other => panic!("no CKA_ID: {other:?}"),
        }
    }

    /// Looks at a secret key of the shared token by CKA_ID, as an operator with the PIN could.
    pub fn inspect(&self, id: &[u8]) -> ObjectFacts {
        self.inspect_class(id, ObjectClass::SECRET_KEY)
    }

    /// Looks at the private half of a key pair by CKA_ID.
    pub fn inspect_private(&self, id: &[u8]) -> ObjectFacts {
        self.inspect_class(id, ObjectClass::PRIVATE_KEY)
    }

    /// Whether the public half of a key pair with this CKA_ID is in the token.
    pub fn has_public(&self, id: &[u8]) -> bool {
        let ctx = context(&self.module).lock().expect("ctx");
        let session = self.session(&ctx);
        !session
            .find_objects(&[Attribute::Class(ObjectClass::PUBLIC_KEY), Attribute::Id(id.to_vec())])
            .expect("find")
            .is_empty()
    }

    fn inspect_class(&self, id: &[u8], class: ObjectClass) -> ObjectFacts {
        let ctx = context(&self.module).lock().expect("ctx");
        let session = self.session(&ctx);
        let found = session.find_objects(&[Attribute::Class(class), Attribute::Id(id.to_vec())]).expect("find");
        let Some(handle) = found.first() else {
            return ObjectFacts { found: false, value_readable: false, sensitive: None, extractable: None };
        };
        let mut facts = ObjectFacts { found: true, value_readable: false, sensitive: None, extractable: None };
        // Each asked alone, so a refusal cannot hide the other attributes (CKA_VALUE holds a
        // secret or EC private key, CKA_PRIVATE_EXPONENT an RSA one).
        for secret in [AttributeType::Value, AttributeType::PrivateExponent, AttributeType::Prime1] {
            if let Ok(attrs) = session.get_attributes(*handle, &[secret]) {
                facts.value_readable |= attrs.iter().any(|a| match a {
                    Attribute::Value(v) | Attribute::PrivateExponent(v) | Attribute::Prime1(v) => !v.is_empty(),
                    _ => false,
                });
            }
        }
        for a in
            session.get_attributes(*handle, &[AttributeType::Sensitive, AttributeType::Extractable]).expect("attrs")
        {
            match a {
                Attribute::Sensitive(v) => facts.sensitive = Some(v),
                Attribute::Extractable(v) => facts.extractable = Some(v),
                _ => {}
            }
        }
        facts
    }
}
