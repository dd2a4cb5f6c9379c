//! Aliases: friendly names that stand for a key wherever a key id does.

use super::{KeyService, Scope, store_err};
use crate::error::{Detail, Error, Result};
use crate::model::context::EncryptionContext;
use crate::model::ids::{AliasName, KeyId, KeyRef};
use crate::operation::{Action, Operation};
use crate::ports::store::{AliasRecord, Write};

/// An alias as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasOutput {
    /// The alias.
    pub alias_name: AliasName,
    /// Its key.
    pub target_key_id: KeyId,
}

/// ListAliases' output.
#[derive(Debug, Clone)]
pub struct ListAliasesOutput {
    /// The page.
    pub aliases: Vec<AliasOutput>,
    /// Cursor for the next page.
    pub next_token: Option<String>,
}

/// Whether CreateAlias may create, repoint, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AliasWrite {
    /// Create the alias or point it at another key (the REST CreateAlias).
    Upsert,
    /// Only create: an existing alias is a `Conflict` (AWS CreateAlias).
    CreateOnly,
    /// Only repoint: a missing alias is `NotFound` (AWS UpdateAlias).
    UpdateOnly,
}

impl KeyService {
    /// CreateAlias: creates the alias or points it at another key, as `mode` allows. Returns
    /// true if created. Repointing needs `CreateAlias` on both the old and the new key.
    pub async fn create_alias(
        &self,
        scope: &mut Scope,
        name: AliasName,
        target: &KeyRef,
        mode: AliasWrite,
    ) -> Result<(AliasOutput, bool)> {
        super::default_keys::ensure_not_reserved(&name)?;
        let key = self.resolve(scope, target).await?;
        let permit =
            self.authorize_key(scope, Action::Op(Operation::CreateAlias), &key, &EncryptionContext::default())?;
        let existing = self.store.alias(&name).await.map_err(store_err)?;
        match (mode, &existing) {
            (AliasWrite::CreateOnly, Some(_)) => {
                return Err(
                    Error::conflict(format!("alias `{name}` already exists")).with_detail(Detail::AlreadyExists)
                );
            }
            (AliasWrite::UpdateOnly, None) => return Err(Error::not_found(format!("alias `{name}`"))),
            _ => {}
        }
        let expected = existing.as_ref().map(|e| e.key_id);
        if let Some(existing) = existing
            && existing.key_id != key.id
            && let Some(old) = self.store.key(existing.key_id).await.map_err(store_err)?
        {
            self.authorize_key(scope, Action::Op(Operation::CreateAlias), &old, &EncryptionContext::default())?;
        }
        let record = AliasRecord { name: name.clone(), key_id: key.id, updated_at: self.clock.now() };
        let refused =
            Error::conflict(format!("alias `{name}` changed concurrently; retry")).with_detail(Detail::AlreadyExists);
        self.stage(scope, permit, Write::PutAlias { alias: record, expected }, refused)?;
        Ok((AliasOutput { alias_name: name, target_key_id: key.id }, expected.is_none()))
    }

    /// DeleteAlias.
    pub async fn delete_alias(&self, scope: &mut Scope, name: &AliasName) -> Result<()> {
        super::default_keys::ensure_not_reserved(name)?;
        let Some(alias) = self.store.alias(name).await.map_err(store_err)? else {
            let missing = Error::not_found(format!("alias `{name}`"));
            return Err(self.unknown_key(
                scope,
                Action::Op(Operation::DeleteAlias),
                &KeyRef::Alias(name.clone()),
                missing,
            ));
        };
        let key = self.resolve(scope, &KeyRef::Id(alias.key_id)).await?;
        let permit =
            self.authorize_key(scope, Action::Op(Operation::DeleteAlias), &key, &EncryptionContext::default())?;
        let write = Write::DeleteAlias { name: name.clone(), key: key.id };
        self.stage(scope, permit, write, Error::not_found(format!("alias `{name}`")))
    }

    /// ListAliases: those of one key, or all in namespaces the caller may list.
    pub async fn list_aliases(
        &self,
        scope: &mut Scope,
        key: Option<&KeyRef>,
        next_token: Option<&str>,
        limit: u64,
    ) -> Result<ListAliasesOutput> {
        let after = next_token.map(AliasName::parse).transpose().map_err(|_| Error::invalid("invalid `next_token`"))?;
        let action = Action::Op(Operation::ListAliases);
        let key_id = match key {
            Some(k) => {
                let key = self.resolve(scope, k).await?;
                self.authorize_namespace(scope, action, &key.namespace)?;
                Some(key.id)
            }
            None => {
                scope.principal()?;
                None
            }
        };
        // As ListKeys: read on until `limit` visible aliases, so a cursor names only an alias
        // the caller was shown.
        let mut aliases = Vec::new();
        let mut cursor = after;
        let mut more = false;
        'pages: loop {
            let page = self.store.list_aliases(key_id, cursor.as_ref(), limit).await.map_err(store_err)?;
            let full = page.len() as u64 == limit;
            let mut rows = page.into_iter().peekable();
            while let Some(alias) = rows.next() {
                cursor = Some(alias.name.clone());
                if key_id.is_none() {
                    let Some(target) = self.store.key(alias.key_id).await.map_err(store_err)? else { continue };
                    if !self.allows_namespace(scope, action, &target.namespace)? {
                        continue;
                    }
                }
                aliases.push(AliasOutput { alias_name: alias.name, target_key_id: alias.key_id });
                if aliases.len() as u64 == limit {
                    more = rows.peek().is_some() || full;
                    break 'pages;
                }
            }
            if !full {
                break;
            }
        }
        let next_token = if more { aliases.last().map(|a| a.alias_name.to_string()) } else { None };
        Ok(ListAliasesOutput { aliases, next_token })
    }
}
