//! Typed reads and writes of the node trees: nodes, their names, node tokens and
//! enrollment tokens. Callers make writes durable with `Store::durable` before answering.

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, abort};

use super::model::{EnrollToken, Node};
use super::repo::name_key;
use crate::store::{Store, StoreError, decode, encode, id_key};

/// A node's token digest (hex in its record) as the key of the token tree; a record whose
/// digest is not hex is corrupt, not silently shortened.
fn digest_key(hex: &str) -> Result<Vec<u8>, StoreError> {
    data_encoding::HEXLOWER_PERMISSIVE
        .decode(hex.as_bytes())
        .map_err(|e| StoreError::Corrupt {
            tree: "nodes",
            error: format!("token digest: {e}"),
        })
}

fn storage(e: TransactionError<()>, what: &str) -> StoreError {
    match e {
        TransactionError::Storage(e) => StoreError::Sled(e),
        TransactionError::Abort(()) => StoreError::Conflict(what.into()),
    }
}

/// What inserting a node found.
#[derive(Debug)]
pub enum InsertNode {
    /// Another node has this name.
    NameTaken,
    Store(StoreError),
}

impl Store {
    pub fn node(&self, id: u64) -> Result<Option<Node>, StoreError> {
        self.trees()?
            .nodes
            .get(id_key(id))?
            .map(|v| decode("nodes", &v))
            .transpose()
    }

    pub fn node_by_name(&self, name: &str) -> Result<Option<Node>, StoreError> {
        let Some(id) = self.trees()?.node_names.get(name_key(name))? else {
            return Ok(None);
        };
        self.node(u64::from_be_bytes(id.as_ref().try_into().unwrap_or([0; 8])))
    }

    pub fn nodes(&self) -> Result<Vec<Node>, StoreError> {
        self.trees()?
            .nodes
            .iter()
            .values()
            .map(|v| decode("nodes", &v?))
            .collect()
    }

    /// The node a node token belongs to.
    pub fn node_by_token(&self, key: &[u8; 32]) -> Result<Option<Node>, StoreError> {
        let Some(id) = self.trees()?.node_tokens.get(key)? else {
            return Ok(None);
        };
        self.node(u64::from_be_bytes(id.as_ref().try_into().unwrap_or([0; 8])))
    }

    /// Inserts a node with its name and token, all or nothing; refuses a name in use.
    pub fn insert_node(&self, node: &Node) -> Result<(), InsertNode> {
        let name = name_key(&node.name);
        let token = digest_key(&node.token_digest).map_err(InsertNode::Store)?;
        let t = self.writer().map_err(InsertNode::Store)?;
        let result =
            (&t.nodes, &t.node_names, &t.node_tokens).transaction(|(nodes, names, tokens)| {
                if names.get(&name)?.is_some() {
                    return abort(());
                }
                names.insert(name.as_slice(), &id_key(node.id))?;
                tokens.insert(token.as_slice(), &id_key(node.id))?;
                nodes.insert(&id_key(node.id), encode(node))?;
                Ok(())
            });
        self.auth_changed();
        match result {
            Ok(()) => Ok(()),
            Err(TransactionError::Abort(())) => Err(InsertNode::NameTaken),
            Err(TransactionError::Storage(e)) => Err(InsertNode::Store(StoreError::Sled(e))),
        }
    }

    /// Removes a node, its name and its token (which stops working at once).
    pub fn delete_node(&self, node: &Node) -> Result<(), StoreError> {
        let name = name_key(&node.name);
        let token = digest_key(&node.token_digest)?;
        let t = self.writer()?;
        let result = (&t.nodes, &t.node_names, &t.node_tokens)
            .transaction(|(nodes, names, tokens)| {
                nodes.remove(&id_key(node.id))?;
                // The name may have been taken over by a newer node already.
                if names
                    .get(&name)?
                    .is_some_and(|id| id.as_ref() == id_key(node.id))
                {
                    names.remove(name.as_slice())?;
                }
                tokens.remove(token.as_slice())?;
                Ok::<(), ConflictableTransactionError<()>>(())
            })
            .map_err(|e| storage(e, "delete node"));
        self.auth_changed();
        result
    }

    /// Records the time of a node's last accepted write, if the node still exists.
    pub fn touch_node(&self, id: u64, now: i64) -> Result<(), StoreError> {
        let written = self.writer()?.nodes.update_and_fetch(id_key(id), |old| {
            let old = old?;
            let mut node: Node = decode("nodes", old).ok()?;
            node.last_push = Some(now);
            Some(encode(&node))
        });
        self.auth_changed();
        written?;
        Ok(())
    }

    pub fn put_enroll_token(&self, key: &[u8; 32], token: &EnrollToken) -> Result<(), StoreError> {
        self.writer()?.enroll_tokens.insert(key, encode(token))?;
        Ok(())
    }

    pub fn enroll_token(&self, key: &[u8; 32]) -> Result<Option<EnrollToken>, StoreError> {
        self.trees()?
            .enroll_tokens
            .get(key)?
            .map(|v| decode("enroll_tokens", &v))
            .transpose()
    }

    /// Removes an enrollment token; `Some` only for the one caller that removed it, so a
    /// token is used once even by concurrent enrollments.
    pub fn take_enroll_token(&self, key: &[u8; 32]) -> Result<Option<EnrollToken>, StoreError> {
        self.writer()?
            .enroll_tokens
            .remove(key)?
            .map(|v| decode("enroll_tokens", &v))
            .transpose()
    }

    /// Removes expired enrollment tokens; returns how many.
    pub fn sweep_enroll_tokens(&self, now: i64) -> Result<usize, StoreError> {
        let mut removed = 0;
        for entry in self.trees()?.enroll_tokens.iter() {
            let (key, value) = entry?;
            let token: EnrollToken = decode("enroll_tokens", &value)?;
            if token.expires_at <= now {
                self.writer()?.enroll_tokens.remove(key)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::digest_key;

    #[test]
    fn hex_digest_round_trip() {
        let d = [0xabu8, 0x01, 0xff, 0x00];
        assert_eq!(digest_key(&crate::secret::hex(&d)).unwrap(), d);
        assert!(
            digest_key("abx1").is_err(),
            "a bad pair is an error, not dropped"
        );
    }
}
