//! Key identifiers as the AWS KMS API writes them: key ids, key ARNs, `alias/NAME` and alias
//! ARNs. Keys are always reported as key ARNs (the AWS Encryption SDK compares them byte for
//! byte).

use keyward_core::Error;
use keyward_core::model::ids::{AliasName, KeyId, KeyRef};

/// `[aws]` settings: what ARNs say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    /// The region written in ARNs (requests signed for any region are accepted).
    pub region: String,
    /// The 12-digit account id written in ARNs.
    pub account_id: String,
}

impl Default for AwsSettings {
    fn default() -> Self {
        Self { region: "us-east-1".into(), account_id: "000000000000".into() }
    }
}

impl AwsSettings {
    /// Checks the settings' shapes.
    pub fn validate(&self) -> Result<(), String> {
        if self.account_id.len() != 12 || !self.account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("`aws.account_id` must be 12 digits, not `{}`", self.account_id));
        }
        let ok = !self.region.is_empty()
            && self.region.len() <= 32
            && self.region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return Err(format!("`aws.region` must be a region name like us-east-1, not `{}`", self.region));
        }
        Ok(())
    }

    /// A key's ARN.
    pub fn key_arn(&self, id: KeyId) -> String {
        format!("arn:aws:kms:{}:{}:key/{id}", self.region, self.account_id)
    }

    /// An alias's ARN.
    pub fn alias_arn(&self, alias: &AliasName) -> String {
        format!("arn:aws:kms:{}:{}:{alias}", self.region, self.account_id)
    }

    /// Parses a `KeyId` parameter: a key id, a key ARN, `alias/NAME` or an alias ARN.
    /// Anything else, or an ARN of another account, is `NotFound`.
    pub fn key_ref(&self, value: &str) -> Result<KeyRef, Error> {
        let not_found = || Error::not_found(format!("Invalid keyId '{}'", value.chars().take(300).collect::<String>()));
        if value.is_empty() || value.len() > 2048 {
            return Err(not_found());
        }
        let resource = match value.strip_prefix("arn:") {
            Some(rest) => {
                let mut parts = rest.splitn(5, ':');
                let (Some(partition), Some("kms"), Some(_region), Some(account), Some(resource)) =
                    (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    return Err(not_found());
                };
                if !partition.starts_with("aws") || account != self.account_id {
                    return Err(not_found());
                }
                match resource.strip_prefix("key/") {
                    Some(id) => return id.parse::<KeyId>().map(KeyRef::Id).map_err(|_| not_found()),
                    None if resource.starts_with(AliasName::PREFIX) => resource,
                    None => return Err(not_found()),
                }
            }
            None => value,
        };
        if resource.starts_with(AliasName::PREFIX) {
            return AliasName::parse(resource).map(KeyRef::Alias).map_err(|_| not_found());
        }
        resource.parse::<KeyId>().map(KeyRef::Id).map_err(|_| not_found())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_a_key_resolves_and_arns_round_trip() {
        let s = AwsSettings::default();
        let id: KeyId = "0193b5a0-6c1e-7f1a-9d2e-3c4b5a6d7e8f".parse().unwrap();
        assert_eq!(s.key_ref(&id.to_string()).unwrap(), KeyRef::Id(id));
        assert_eq!(s.key_ref(&s.key_arn(id)).unwrap(), KeyRef::Id(id));
        assert_eq!(
            s.key_ref("arn:aws:kms:eu-west-3:000000000000:key/0193b5a0-6c1e-7f1a-9d2e-3c4b5a6d7e8f").unwrap(),
            KeyRef::Id(id),
            "any region"
        );
        let alias = AliasName::parse("alias/app").unwrap();
        assert_eq!(s.key_ref("alias/app").unwrap(), KeyRef::Alias(alias.clone()));
        assert_eq!(s.key_ref(&s.alias_arn(&alias)).unwrap(), KeyRef::Alias(alias));
        for bad in [
            "",
            "nope",
            "arn:aws:kms:us-east-1:111111111111:key/0193b5a0-6c1e-7f1a-9d2e-3c4b5a6d7e8f",
            "arn:aws:s3:us-east-1:000000000000:key/0193b5a0-6c1e-7f1a-9d2e-3c4b5a6d7e8f",
            "arn:aws:kms:us-east-1:000000000000:key/not-a-uuid",
            "alias/",
        ] {
            assert_eq!(s.key_ref(bad).unwrap_err().code(), keyward_core::ErrorCode::NotFound, "{bad}");
        }
    }

    #[test]
    fn settings_are_checked() {
        assert!(AwsSettings::default().validate().is_ok());
        assert!(AwsSettings { account_id: "123".into(), ..AwsSettings::default() }.validate().is_err());
        assert!(AwsSettings { region: "US East".into(), ..AwsSettings::default() }.validate().is_err());
    }
}
