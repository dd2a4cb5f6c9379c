//! The operations Keyward performs; each is one Cedar action and one audit `action` value.

use std::fmt;

/// One API operation. The name is the Cedar action id and the OpenAPI operation id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs, reason = "each variant is the operation of the same name in the API table")]
pub enum Operation {
    CreateKey,
    ListKeys,
    DescribeKey,
    UpdateKey,
    EnableKey,
    DisableKey,
    ScheduleKeyDeletion,
    CancelKeyDeletion,
    RotateKey,
    ListKeyVersions,
    GetKeyUsage,
    GetNamespaceUsage,
    SetMinDecryptionVersion,
    Encrypt,
    Decrypt,
    ReEncrypt,
    GenerateDataKey,
    GenerateDataKeyWithoutPlaintext,
    GenerateRandom,
    GenerateDataKeyPair,
    GenerateDataKeyPairWithoutPlaintext,
    Sign,
    Verify,
    GetPublicKey,
    GenerateMac,
    VerifyMac,
    GetParametersForImport,
    ImportKeyMaterial,
    DeleteImportedKeyMaterial,
    CreateAlias,
    DeleteAlias,
    ListAliases,
    CreateGrant,
    ListGrants,
    RevokeGrant,
    Authorize,
    GetPolicies,
    ReloadPolicies,
    QueryAudit,
    VerifyAudit,
    CreateAccessKey,
    ListAccessKeys,
    DeleteAccessKey,
    ListApprovals,
    GetApproval,
    Approve,
    Reject,
    /// A request for an operation Keyward does not have (audited, then refused).
    Unsupported,
    /// Background destruction of a key whose deletion date has passed.
    DestroyKey,
    /// A health check a front door answers for another system (XKS GetHealthStatus): audited,
    /// decided by no policy.
    HealthCheck,
    /// An attempt to use a key pending deletion, raised as an alarm (the deletion canary):
    /// recorded with the attempt's principal, decided by no policy.
    DeletionCanary,
    /// Background expiry of an approval request nobody decided in time.
    ExpireApproval,
}

impl Operation {
    /// The operation's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateKey => "CreateKey",
            Self::ListKeys => "ListKeys",
            Self::DescribeKey => "DescribeKey",
            Self::UpdateKey => "UpdateKey",
            Self::EnableKey => "EnableKey",
            Self::DisableKey => "DisableKey",
            Self::ScheduleKeyDeletion => "ScheduleKeyDeletion",
            Self::CancelKeyDeletion => "CancelKeyDeletion",
            Self::RotateKey => "RotateKey",
            Self::ListKeyVersions => "ListKeyVersions",
            Self::GetKeyUsage => "GetKeyUsage",
            Self::GetNamespaceUsage => "GetNamespaceUsage",
            Self::SetMinDecryptionVersion => "SetMinDecryptionVersion",
            Self::Encrypt => "Encrypt",
            Self::Decrypt => "Decrypt",
            Self::ReEncrypt => "ReEncrypt",
            Self::GenerateDataKey => "GenerateDataKey",
            Self::GenerateDataKeyWithoutPlaintext => "GenerateDataKeyWithoutPlaintext",
            Self::GenerateRandom => "GenerateRandom",
            Self::GenerateDataKeyPair => "GenerateDataKeyPair",
            Self::GenerateDataKeyPairWithoutPlaintext => "GenerateDataKeyPairWithoutPlaintext",
            Self::Sign => "Sign",
            Self::Verify => "Verify",
            Self::GetPublicKey => "GetPublicKey",
            Self::GenerateMac => "GenerateMac",
            Self::VerifyMac => "VerifyMac",
            Self::GetParametersForImport => "GetParametersForImport",
            Self::ImportKeyMaterial => "ImportKeyMaterial",
            Self::DeleteImportedKeyMaterial => "DeleteImportedKeyMaterial",
            Self::CreateAlias => "CreateAlias",
            Self::DeleteAlias => "DeleteAlias",
            Self::ListAliases => "ListAliases",
            Self::CreateGrant => "CreateGrant",
            Self::ListGrants => "ListGrants",
            Self::RevokeGrant => "RevokeGrant",
            Self::Authorize => "Authorize",
            Self::GetPolicies => "GetPolicies",
            Self::ReloadPolicies => "ReloadPolicies",
            Self::QueryAudit => "QueryAudit",
            Self::VerifyAudit => "VerifyAudit",
            Self::CreateAccessKey => "CreateAccessKey",
            Self::ListAccessKeys => "ListAccessKeys",
            Self::DeleteAccessKey => "DeleteAccessKey",
            Self::ListApprovals => "ListApprovals",
            Self::GetApproval => "GetApproval",
            Self::Approve => "Approve",
            Self::Reject => "Reject",
            Self::Unsupported => "Unsupported",
            Self::DestroyKey => "DestroyKey",
            Self::HealthCheck => "HealthCheck",
            Self::DeletionCanary => "DeletionCanary",
            Self::ExpireApproval => "ExpireApproval",
        }
    }
}

impl Operation {
    /// Whether the operation uses a key without changing it, where a key record cached for
    /// a few milliseconds past another replica's change is acceptable (the data plane). Every
    /// other operation reads the key as the database holds it.
    pub fn uses_cached_keys(self) -> bool {
        self.uses_key_material() || matches!(self, Self::GetPublicKey | Self::Authorize)
    }

    /// Whether the operation uses a key version's material: what GetKeyUsage counts.
    pub fn uses_key_material(self) -> bool {
        matches!(
            self,
            Self::Encrypt
                | Self::Decrypt
                | Self::ReEncrypt
                | Self::GenerateDataKey
                | Self::GenerateDataKeyWithoutPlaintext
                | Self::GenerateDataKeyPair
                | Self::GenerateDataKeyPairWithoutPlaintext
                | Self::Sign
                | Self::Verify
                | Self::GenerateMac
                | Self::VerifyMac
        )
    }
}

impl std::str::FromStr for Operation {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL.iter().copied().find(|op| op.as_str() == s).ok_or(())
    }
}

impl Operation {
    /// Every operation callers can name.
    pub const ALL: [Self; 47] = [
        Self::CreateKey,
        Self::ListKeys,
        Self::DescribeKey,
        Self::UpdateKey,
        Self::EnableKey,
        Self::DisableKey,
        Self::ScheduleKeyDeletion,
        Self::CancelKeyDeletion,
        Self::RotateKey,
        Self::ListKeyVersions,
        Self::GetKeyUsage,
        Self::GetNamespaceUsage,
        Self::SetMinDecryptionVersion,
        Self::Encrypt,
        Self::Decrypt,
        Self::ReEncrypt,
        Self::GenerateDataKey,
        Self::GenerateDataKeyWithoutPlaintext,
        Self::GenerateRandom,
        Self::GenerateDataKeyPair,
        Self::GenerateDataKeyPairWithoutPlaintext,
        Self::Sign,
        Self::Verify,
        Self::GetPublicKey,
        Self::GenerateMac,
        Self::VerifyMac,
        Self::GetParametersForImport,
        Self::ImportKeyMaterial,
        Self::DeleteImportedKeyMaterial,
        Self::CreateAlias,
        Self::DeleteAlias,
        Self::ListAliases,
        Self::CreateGrant,
        Self::ListGrants,
        Self::RevokeGrant,
        Self::Authorize,
        Self::GetPolicies,
        Self::ReloadPolicies,
        Self::QueryAudit,
        Self::VerifyAudit,
        Self::CreateAccessKey,
        Self::ListAccessKeys,
        Self::DeleteAccessKey,
        Self::ListApprovals,
        Self::GetApproval,
        Self::Approve,
        Self::Reject,
    ];
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The Cedar action checked for a step of an operation. Most operations are one action;
/// ReEncrypt is two (`ReEncryptFrom` on the source key, `ReEncryptTo` on the destination).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// The action named like the operation.
    Op(Operation),
    /// Decrypting the source of a ReEncrypt.
    ReEncryptFrom,
    /// Encrypting the destination of a ReEncrypt.
    ReEncryptTo,
    /// Whether a request for this operation must wait for M-of-N approval (the Cedar action
    /// `RequireApproval`, with the operation as `context.operation`).
    RequireApproval(Operation),
}

impl Action {
    /// The Cedar action id.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Op(op) => op.as_str(),
            Self::ReEncryptFrom => "ReEncryptFrom",
            Self::ReEncryptTo => "ReEncryptTo",
            Self::RequireApproval(_) => "RequireApproval",
        }
    }
}

impl std::str::FromStr for Action {
    type Err = ();

    /// Parses a Cedar action id (`Encrypt`, `ReEncryptFrom`, ...).
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "ReEncryptFrom" => Ok(Self::ReEncryptFrom),
            "ReEncryptTo" => Ok(Self::ReEncryptTo),
            "ReEncrypt" => Err(()),
            other => other.parse().map(Self::Op),
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
