//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Keyward: a key management service.
#[derive(Debug, Parser)]
#[command(name = "keyward", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the server (with no configuration: the embedded dev default).
    Serve(ServeArgs),
    /// Mints a token signed with the dev secret, for trying policies by hand.
    Token(TokenArgs),
    /// Applies database migrations and exits.
    Migrate(StateArgs),
    /// Prints the OpenAPI document.
    Openapi,
    /// Checks or reads the audit trail a server wrote.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Checks a policy directory: validate, run its tests, or diff two sets.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Encrypts a file or stream on this machine under a new data key from GenerateDataKey
    /// (docs/envelope-format.md); the data never leaves this machine.
    Encrypt(EncryptArgs),
    /// Decrypts what `keyward encrypt` wrote; OUT appears only if every frame verified.
    Decrypt(DecryptArgs),
    /// Issues, lists and deletes access keys for the AWS KMS-compatible API (SigV4).
    #[command(subcommand)]
    AccessKey(AccessKeyCommand),
    /// M-of-N approvals of sensitive requests: list, get, approve, reject.
    Approval(ApprovalArgs),
    /// Manages keys on a running server: create, list, describe, update, enable, disable,
    /// rotate, versions, schedule-deletion, cancel-deletion, set-min-version.
    Key(KeyArgs),
    /// Manages aliases on a running server: create (or repoint), list, delete.
    Alias(RemoteCommand<AliasCommand>),
    /// Manages grants on a running server: create, list, revoke.
    Grant(RemoteCommand<GrantCommand>),
    /// GenerateDataKey: a data key and its blob under KEY (`--without-plaintext`: the blob only).
    DataKey(RemoteCommand<DataKeyCommand>),
    /// GenerateRandom: random bytes from a backend, base64.
    Random(RemoteCommand<RandomCommand>),
    /// Signatures and MACs with a signing or HMAC key: create, verify, mac, verify-mac.
    Sign(RemoteCommand<SignCommand>),
    /// Authorize: may PRINCIPAL do ACTION on RESOURCE? (a dry-run decision; nothing runs).
    Authorize(RemoteCommand<AuthorizeCommand>),
    /// Prints the manual page (roff): `keyward man | man -l -`; `--dir` writes one page per
    /// command and subcommand (keyward.1, keyward-key.1, keyward-key-create.1, ...).
    Man {
        /// Where to write every page (created when missing).
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
    },
    /// Prints a shell completion script: `source <(keyward completion bash)`.
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// A command against a running server (`--server`/`KEYWARD_SERVER`, `--token`/`KEYWARD_TOKEN`).
#[derive(Debug, clap::Args)]
pub struct RemoteCommand<C: Subcommand> {
    /// The operation.
    #[command(subcommand)]
    pub command: C,
    /// `table` for people, `json` for scripts (the API's own JSON).
    #[arg(long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// `keyward alias`.
#[derive(Debug, Subcommand)]
pub enum AliasCommand {
    /// CreateAlias: NAME (`alias/...`) points to KEY (created, or repointed).
    Create {
        /// The alias.
        name: String,
        /// The key it points to.
        key: String,
    },
    /// ListAliases: every page, or those of one key.
    List {
        /// Only this key's aliases.
        #[arg(long)]
        key: Option<String>,
    },
    /// DeleteAlias.
    Delete {
        /// The alias.
        name: String,
    },
}

/// `keyward grant`.
#[derive(Debug, Subcommand)]
pub enum GrantCommand {
    /// CreateGrant: GRANTEE may do OPERATIONs on KEY.
    Create {
        /// The key.
        key: String,
        /// `Keyward::User::"alice"`, `Keyward::Service::"x"` or `Keyward::Group::"g"`.
        grantee: String,
        /// An operation (repeatable): Encrypt, Decrypt, GenerateDataKey, ...
        #[arg(long = "operation", required = true)]
        operations: Vec<String>,
        /// Only with exactly this encryption context entry `NAME=VALUE` (repeatable).
        #[arg(long = "context-equals", value_parser = parse_pair)]
        context_equals: Vec<(String, String)>,
    },
    /// ListGrants of a key.
    List {
        /// The key.
        key: String,
    },
    /// RevokeGrant.
    Revoke {
        /// The grant id.
        grant_id: String,
    },
}

/// `keyward data-key`.
#[derive(Debug, Subcommand)]
pub enum DataKeyCommand {
    /// A 256-bit data key under KEY.
    Generate {
        /// The key.
        key: String,
        /// An encryption context entry `NAME=VALUE` (repeatable).
        #[arg(long = "context", value_parser = parse_pair)]
        context: Vec<(String, String)>,
        /// Only the blob, no plaintext.
        #[arg(long)]
        without_plaintext: bool,
    },
}

/// `keyward sign`. FILE is read whole (`-` for stdin); RAW messages are at most 4096 bytes:
/// give `--digest` to send the file's hash instead (computed here).
#[derive(Debug, Subcommand)]
pub enum SignCommand {
    /// Sign: prints the signature, base64.
    Create {
        /// The signing key.
        key: String,
        /// The message file.
        file: std::path::PathBuf,
        /// The algorithm, e.g. ECDSA_SHA_256, RSASSA_PSS_SHA_256, ED25519_SHA_512.
        #[arg(long)]
        algorithm: String,
        /// Send the file's digest under the algorithm's hash (message type DIGEST).
        #[arg(long)]
        digest: bool,
    },
    /// Verify: exits 0 when the signature is valid, 1 when it is not.
    Verify {
        /// The signing key.
        key: String,
        /// The message file.
        file: std::path::PathBuf,
        /// The signature, base64.
        #[arg(long)]
        signature: String,
        /// The algorithm it was made with.
        #[arg(long)]
        algorithm: String,
        /// The signature is over the file's digest (message type DIGEST).
        #[arg(long)]
        digest: bool,
    },
    /// GenerateMac: prints the MAC, base64.
    Mac {
        /// The HMAC key.
        key: String,
        /// The message file (at most 4096 bytes).
        file: std::path::PathBuf,
        /// HMAC_SHA_256, HMAC_SHA_384 or HMAC_SHA_512.
        #[arg(long)]
        algorithm: String,
    },
    /// VerifyMac: exits 0 when the MAC is valid, 1 when it is not.
    VerifyMac {
        /// The HMAC key.
        key: String,
        /// The message file.
        file: std::path::PathBuf,
        /// The MAC, base64.
        #[arg(long)]
        mac: String,
        /// The algorithm it was made with.
        #[arg(long)]
        algorithm: String,
    },
}

/// `keyward random`.
#[derive(Debug, Subcommand)]
pub enum RandomCommand {
    /// Random bytes.
    Generate {
        /// How many (1-1024).
        #[arg(long, default_value_t = 32)]
        bytes: u32,
        /// The namespace whose backend draws them.
        #[arg(long)]
        namespace: Option<String>,
    },
}

/// `keyward authorize`.
#[derive(Debug, Subcommand)]
pub enum AuthorizeCommand {
    /// Asks for a decision.
    Ask {
        /// The action, e.g. `Decrypt`.
        action: String,
        /// `Keyward::Key::"<id or alias/NAME>"` or `Keyward::Namespace::"ns"`.
        resource: String,
        /// Asks about another principal (`Keyward::User::"bob"`; needs `Authorize`).
        #[arg(long)]
        principal: Option<String>,
        /// That principal's group (repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// An encryption context entry `NAME=VALUE` (repeatable).
        #[arg(long = "context", value_parser = parse_pair)]
        context: Vec<(String, String)>,
    },
}

/// `keyward key [--server URL] [--token T] COMMAND ...` (or `KEYWARD_SERVER`, `KEYWARD_TOKEN`):
/// exit status 2 invalid input, 3 denied, 4 not found, 5 unavailable.
#[derive(Debug, clap::Args)]
pub struct KeyArgs {
    /// The operation.
    #[command(subcommand)]
    pub command: KeyCommand,
    /// `table` for people, `json` for scripts (the API's own JSON).
    #[arg(long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// How a command prints its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Aligned columns.
    Table,
    /// The API's JSON.
    Json,
}

/// `keyward key` subcommands. KEY is a key id or `alias/NAME`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// CreateKey.
    Create {
        /// The namespace it belongs to.
        #[arg(long)]
        namespace: String,
        /// A description.
        #[arg(long, default_value = "")]
        description: String,
        /// An alias to create with it (`alias/NAME`).
        #[arg(long)]
        alias: Option<String>,
        /// The backend instance that holds it (default: the server's).
        #[arg(long)]
        backend: Option<String>,
        /// A tag `NAME=VALUE` (repeatable).
        #[arg(long = "tag", value_parser = parse_pair)]
        tags: Vec<(String, String)>,
        /// The key spec: AES_256 (default), RSA_2048, RSA_3072, RSA_4096, ECC_NIST_P256,
        /// ECC_NIST_P384, ECC_NIST_P521, ECC_NIST_EDWARDS25519, HMAC_256, HMAC_384, HMAC_512.
        #[arg(long)]
        spec: Option<String>,
        /// The key usage (default: the spec's): ENCRYPT_DECRYPT, SIGN_VERIFY, GENERATE_VERIFY_MAC.
        #[arg(long)]
        usage: Option<String>,
        /// KEYWARD (default) or EXTERNAL: no material is made; import yours with `key import`.
        #[arg(long)]
        origin: Option<String>,
    },
    /// GetParametersForImport: a wrapping public key (PEM in the table) and an import token, to
    /// wrap material yourself (`key import` does it for you).
    ImportParameters {
        /// The key.
        key: String,
        /// RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, RSA_AES_KEY_WRAP_SHA_1 or
        /// RSA_AES_KEY_WRAP_SHA_256 (default).
        #[arg(long)]
        wrapping_algorithm: Option<String>,
        /// RSA_2048, RSA_3072 or RSA_4096 (default).
        #[arg(long)]
        wrapping_key_spec: Option<String>,
    },
    /// ImportKeyMaterial. With `--material`, the CLI gets import parameters, wraps the file
    /// locally (RSA-AES key wrap) and imports it; the material never travels unwrapped. With
    /// `--encrypted` and `--token`, it imports material wrapped elsewhere.
    Import {
        /// The key (created with `--origin EXTERNAL`).
        key: String,
        /// The material: 32 raw bytes (AES_256), the raw HMAC key, or a PKCS#8 DER private key.
        #[arg(long, conflicts_with_all = ["encrypted", "token"])]
        material: Option<std::path::PathBuf>,
        /// Material already wrapped under the import parameters' public key.
        #[arg(long, requires = "token")]
        encrypted: Option<std::path::PathBuf>,
        /// The import token (base64, as GetParametersForImport returned it) in a file.
        #[arg(long, requires = "encrypted")]
        token: Option<std::path::PathBuf>,
        /// When the material expires (RFC 3339); default never.
        #[arg(long)]
        valid_to: Option<String>,
    },
    /// DeleteImportedKeyMaterial: the key waits for the same material again.
    DeleteImportedMaterial {
        /// The key.
        key: String,
    },
    /// GetPublicKey of a signing key: the PEM (table output) or the API's JSON.
    PublicKey {
        /// The key.
        key: String,
    },
    /// ListKeys: every page, in one namespace or all the caller may list.
    List {
        /// Only this namespace.
        #[arg(long)]
        namespace: Option<String>,
    },
    /// DescribeKey.
    Describe {
        /// The key.
        key: String,
    },
    /// UpdateKey: description and automatic rotation.
    Update {
        /// The key.
        key: String,
        /// A new description.
        #[arg(long)]
        description: Option<String>,
        /// Rotate automatically every this many days.
        #[arg(long)]
        rotation_period_days: Option<u32>,
        /// Rotate automatically after this many encryptions with the primary version.
        #[arg(long)]
        rotate_after_encryptions: Option<u64>,
        /// What an attempt to use the key while it is pending deletion does besides refusing:
        /// `alert` (record, count, notify) or `cancel` (also cancel the deletion).
        #[arg(long, value_parser = ["alert", "cancel"])]
        on_use_while_pending: Option<String>,
    },
    /// EnableKey.
    Enable {
        /// The key.
        key: String,
    },
    /// DisableKey.
    Disable {
        /// The key.
        key: String,
    },
    /// RotateKey: a new primary version.
    Rotate {
        /// The key.
        key: String,
    },
    /// ListKeyVersions.
    Versions {
        /// The key.
        key: String,
    },
    /// GetKeyUsage: per version, its use and whether it is safe to retire.
    Usage {
        /// The key.
        key: String,
        /// The window in days (1-366).
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
    /// GetNamespaceUsage: GetKeyUsage for every key of a namespace (every page).
    NamespaceUsage {
        /// The namespace.
        namespace: String,
        /// The window in days (1-366).
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
    /// ScheduleKeyDeletion.
    ScheduleDeletion {
        /// The key.
        key: String,
        /// Days before destruction (7-30).
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
    /// CancelKeyDeletion: the key comes back disabled.
    CancelDeletion {
        /// The key.
        key: String,
    },
    /// SetMinDecryptionVersion.
    SetMinVersion {
        /// The key.
        key: String,
        /// Versions below it stop decrypting.
        version: u32,
    },
}

/// `keyward approval ...`.
#[derive(Debug, Args)]
pub struct ApprovalArgs {
    /// The operation.
    #[command(subcommand)]
    pub command: ApprovalCommand,
    /// `table` for people, `json` for scripts (the API's own JSON).
    #[arg(long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// The approval subcommands.
#[derive(Debug, Subcommand)]
pub enum ApprovalCommand {
    /// ListApprovals (every page), optionally in one state.
    List {
        /// `Pending`, `Executing`, `Executed`, `Rejected` or `Expired`.
        #[arg(long)]
        state: Option<String>,
    },
    /// GetApproval.
    Get {
        /// The approval id.
        id: String,
    },
    /// Approve (the approval reaching the quorum runs the request).
    Approve {
        /// The approval id.
        id: String,
    },
    /// Reject.
    Reject {
        /// The approval id.
        id: String,
    },
}

/// `keyward access-key ...`.
#[derive(Debug, Subcommand)]
pub enum AccessKeyCommand {
    /// Issues an access key; prints its id and secret (shown this once) as JSON.
    Create {
        /// The principal it acts as: `Keyward::User::"alice"` or `Keyward::Service::"ci"`.
        #[arg(long)]
        principal: String,
        /// A group the principal is a member of (repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Where CreateKey puts keys that name no namespace.
        #[arg(long = "namespace")]
        default_namespace: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Lists access keys (never their secrets).
    List {
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Deletes an access key: requests signed with it are refused from now on.
    Delete {
        /// The access key id.
        access_key_id: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

/// Where the server is and who is asking.
#[derive(Debug, clap::Args)]
pub struct RemoteArgs {
    /// Keyward's URL (default: the profile's, else http://127.0.0.1:8420).
    #[arg(long, env = "KEYWARD_SERVER")]
    pub server: Option<String>,
    /// A bearer token.
    #[arg(long, env = "KEYWARD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A file holding the bearer token (kept out of the process list and shell history).
    #[arg(long, env = "KEYWARD_TOKEN_FILE", conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
    /// PEM certificates to trust besides the web PKI (a private CA).
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// A named server from the profile file (`~/.config/keyward/config.toml`, or
    /// `KEYWARD_CONFIG_FILE`); without it, the file's `default`.
    #[arg(long, env = "KEYWARD_PROFILE")]
    pub profile: Option<String>,
}

/// `keyward encrypt`.
#[derive(Debug, clap::Args)]
pub struct EncryptArgs {
    /// The key (id or `alias/NAME`) that wraps the data key.
    #[arg(long)]
    pub key: String,
    /// An encryption context pair `name=value` (repeatable); decryption needs the same.
    #[arg(long = "context", value_parser = parse_pair)]
    pub context: Vec<(String, String)>,
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// The file to encrypt (`-`: standard input).
    pub input: PathBuf,
    /// Where to write the envelope (`-`: standard output).
    pub output: PathBuf,
}

/// `keyward decrypt`.
#[derive(Debug, clap::Args)]
pub struct DecryptArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// The envelope (`-`: standard input).
    pub input: PathBuf,
    /// Where to write the plaintext (`-`: standard output, streamed as frames verify).
    pub output: PathBuf,
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("`{s}` is not name=value")),
    }
}

/// `keyward audit ...`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walks every hash chain beside its signed checkpoints; exits 1 unless nothing is broken,
    /// every signature was checked, and no chain's unsigned tail spans more than the checkpoint
    /// interval. Prints the report as JSON.
    Verify {
        /// Resume from this checkpoint id (a signed head): only its chain from there on and
        /// later chains are walked.
        #[arg(long)]
        from_checkpoint: Option<i64>,
        #[command(flatten)]
        state: StateArgs,
        /// Ask a running server instead (VerifyAudit; `--server`, `--token`, `--profile`).
        #[arg(long)]
        remote: bool,
        #[command(flatten)]
        server: RemoteArgs,
    },
    /// QueryAudit on a running server: records as JSON lines, oldest first, every page.
    Query {
        /// Only this principal (`Keyward::User::"alice"`).
        #[arg(long)]
        principal: Option<String>,
        /// Only this key id.
        #[arg(long)]
        key: Option<String>,
        /// Only this action.
        #[arg(long)]
        action: Option<String>,
        /// Only `Allow` or `Deny`.
        #[arg(long)]
        decision: Option<String>,
        /// From this time on (RFC 3339).
        #[arg(long)]
        from: Option<String>,
        /// At most this many records.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Prints records as JSON lines, oldest first.
    Export {
        /// Only records from this time on (RFC 3339).
        #[arg(long)]
        from: Option<chrono::DateTime<chrono::Utc>>,
        #[command(flatten)]
        state: StateArgs,
    },
}

/// `keyward policy ...`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Parses and strictly validates `*.cedar` against `keyward.cedarschema`.
    Validate {
        /// The policy directory.
        dir: PathBuf,
    },
    /// Runs the JSON cases in `DIR/tests/`; fails on a mismatch or on a policy no case covers.
    Test {
        /// The policy directory.
        dir: PathBuf,
    },
    /// Lists test cases and recorded requests whose decision changes from OLD to NEW.
    Diff(DiffArgs),
    /// Proves, for every well-typed request (cvc5 via Cedar's symbolic compiler): no policy
    /// errors; admins are never locked out; the properties in DIR/proofs/*.json; and with
    /// `--implies OLD`, that the set allows nothing OLD did not. Prints a counterexample for
    /// each property that fails, and fails.
    Prove {
        /// The policy directory.
        dir: PathBuf,
        /// A policy directory the set must imply (the change only narrows access).
        #[arg(long)]
        implies: Option<PathBuf>,
    },
    /// GetPolicies from a running server: its policy set version and policies.
    Get {
        /// Print the API's JSON instead of the policies' text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// ReloadPolicies on a running server (from its policy directory); prints the new version.
    Reload {
        /// Load a set that fails its never-errors or lockout proof (admins only; audited).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

/// `policy diff` options.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The current policy directory.
    pub old: PathBuf,
    /// The proposed policy directory.
    pub new: PathBuf,
    /// Also replay the audit trail over this window (like `24h`, `7d`), from the database
    /// chosen by `--config` / `--database-url` / `--data-dir`.
    #[arg(long)]
    pub audit_since: Option<String>,
    /// Exit 1 when any decision changes.
    #[arg(long)]
    pub fail_on_change: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

/// Options shared by every subcommand that touches state.
#[derive(Debug, Args, Clone, Default)]
pub struct StateArgs {
    /// The TOML configuration file.
    #[arg(long, env = "KEYWARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where generated dev secrets and the SQLite file live.
    #[arg(long, env = "KEYWARD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// `sqlite://...` or `postgres://...`; default: SQLite in the data directory.
    #[arg(long, env = "KEYWARD_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

/// `serve` options.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub state: StateArgs,
    /// The address to listen on.
    #[arg(long, env = "KEYWARD_LISTEN")]
    pub listen: Option<String>,
    /// The policy directory (`*.cedar` and `keyward.cedarschema`).
    #[arg(long, env = "KEYWARD_POLICIES")]
    pub policies: Option<PathBuf>,
}

/// `token` options.
#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub state: StateArgs,
    /// The subject.
    #[arg(long)]
    pub sub: String,
    /// A group (repeatable).
    #[arg(long = "group")]
    pub groups: Vec<String>,
    /// Lifetime, like `30m`, `1h`, `7d`.
    #[arg(long, default_value = "1h")]
    pub ttl: String,
    /// Mint a `Keyward::Service` principal instead of a user.
    #[arg(long)]
    pub service: bool,
}
