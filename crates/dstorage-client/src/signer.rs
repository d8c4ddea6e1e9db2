//! Sign transactions with a user's key under one signature standard.

use dstorage_auth::{Registry, SecretKey};
use dstorage_types::read::{ReadAuth, ReadEnvelope};
use dstorage_types::tx::{Payload, Transaction, TxBody};

use crate::ClientError;

/// A key plus the signature standard its wallet uses; knows its sender bytes and identity.
pub struct Signer {
    key: SecretKey,
    standard: String,
    sender: Vec<u8>,
    identity: String,
}

impl Signer {
    /// A signer for `key` under `standard` (e.g. `eth_personal_sign`, `ed25519`).
    pub fn new(key: SecretKey, standard: &str) -> Result<Signer, ClientError> {
        // Sign a probe message to learn the sender bytes the standard uses, and check the standard exists.
        let probe = dstorage_auth::sign(standard, &key, b"dstorage probe")
            .map_err(|e| ClientError::Sign(e.to_string()))?;
        let identity = Registry::with_default_standards()
            .get(standard)
            .and_then(|a| a.identifier(&probe.sender))
            .map_err(|e| ClientError::Sign(e.to_string()))?;
        Ok(Signer {
            key,
            standard: standard.to_string(),
            sender: probe.sender,
            identity,
        })
    }

    /// The identity the network sees (e.g. a checksummed 0x address).
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The signature standard.
    pub fn standard(&self) -> &str {
        &self.standard
    }

    /// Sign `payload` for `chain_id` with `nonce`.
    pub fn sign(
        &self,
        chain_id: &str,
        nonce: u64,
        payload: Payload,
    ) -> Result<Transaction, ClientError> {
        let body = TxBody {
            chain_id: chain_id.to_string(),
            standard: self.standard.clone(),
            sender: self.sender.clone(),
            nonce,
            payload,
        };
        let signed = dstorage_auth::sign(&self.standard, &self.key, body.signed_text().as_bytes())
            .map_err(|e| ClientError::Sign(e.to_string()))?;
        Ok(body.with_signature(signed.signature))
    }

    /// Sign a read envelope for `chain_id` with a challenge from `GET /v1/challenge`: fills in its `auth`.
    pub fn sign_read(
        &self,
        chain_id: &str,
        challenge: &str,
        mut envelope: ReadEnvelope,
    ) -> Result<ReadEnvelope, ClientError> {
        let request = envelope
            .request()
            .map_err(|e| ClientError::Sign(e.to_string()))?;
        let mut auth = ReadAuth {
            chain_id: chain_id.to_string(),
            standard: self.standard.clone(),
            sender: hex::encode(&self.sender),
            challenge: challenge.to_string(),
            signature: String::new(),
        };
        let text = envelope.signed_text(&request, &auth);
        let signed = dstorage_auth::sign(&self.standard, &self.key, text.as_bytes())
            .map_err(|e| ClientError::Sign(e.to_string()))?;
        auth.signature = hex::encode(signed.signature);
        envelope.auth = Some(auth);
        Ok(envelope)
    }
}
