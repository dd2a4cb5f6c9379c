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
    SetMinDecryptionVersion,
    Encrypt,
    Decrypt,
    ReEncrypt,
    GenerateDataKey,
    GenerateDataKeyWithoutPlaintext,
    GenerateRandom,
    CreateAlias,
    DeleteAlias,
    ListAliases,
    /// Background destruction of a key whose deletion date has passed.
    DestroyKey,
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
            Self::SetMinDecryptionVersion => "SetMinDecryptionVersion",
            Self::Encrypt => "Encrypt",
            Self::Decrypt => "Decrypt",
            Self::ReEncrypt => "ReEncrypt",
            Self::GenerateDataKey => "GenerateDataKey",
            Self::GenerateDataKeyWithoutPlaintext => "GenerateDataKeyWithoutPlaintext",
            Self::GenerateRandom => "GenerateRandom",
            Self::CreateAlias => "CreateAlias",
            Self::DeleteAlias => "DeleteAlias",
            Self::ListAliases => "ListAliases",
            Self::DestroyKey => "DestroyKey",
        }
    }
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
}

impl Action {
    /// The Cedar action id.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Op(op) => op.as_str(),
            Self::ReEncryptFrom => "ReEncryptFrom",
            Self::ReEncryptTo => "ReEncryptTo",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
