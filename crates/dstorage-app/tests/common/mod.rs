//! Helpers shared by the in-process app tests: wallets that sign real transactions.
#![allow(dead_code)]

use dstorage_auth::SecretKey;
use dstorage_client::Signer;
use dstorage_types::identity::KeyType;
use dstorage_types::result::ResultCode;
use dstorage_types::tx::Payload;
use tendermint::abci::types::ExecTxResult;

pub const CHAIN: &str = "dstorage-test";

/// A user: a key, a standard and the next nonce to use.
pub struct Wallet {
    pub signer: Signer,
    pub next_nonce: u64,
    pub chain: String,
}

impl Wallet {
    pub fn new(key_type: KeyType, standard: &str) -> Wallet {
        Wallet {
            signer: Signer::new(SecretKey::generate(key_type), standard).expect("signer"),
            next_nonce: 1,
            chain: CHAIN.to_string(),
        }
    }

    pub fn eth() -> Wallet {
        Self::new(KeyType::Secp256k1, "eth_personal_sign")
    }

    pub fn ed25519() -> Wallet {
        Self::new(KeyType::Ed25519, "ed25519")
    }

    /// Sign `payload` with the next nonce and advance it.
    pub fn tx(&mut self, payload: Payload) -> Vec<u8> {
        let bytes = self.tx_with_nonce(self.next_nonce, payload);
        self.next_nonce += 1;
        bytes
    }

    /// Sign `payload` with a chosen nonce.
    pub fn tx_with_nonce(&self, nonce: u64, payload: Payload) -> Vec<u8> {
        self.signer
            .sign(&self.chain, nonce, payload)
            .expect("sign")
            .encode()
    }

    pub fn identity(&self) -> String {
        self.signer.identity().to_string()
    }
}

pub fn deploy(schema: &str, sql: &str) -> Payload {
    Payload::DeploySchema {
        schema: schema.into(),
        sql: sql.into(),
    }
}

pub fn sql(schema: &str, sql: &str) -> Payload {
    Payload::Sql {
        schema: schema.into(),
        sql: sql.into(),
        params: Vec::new(),
    }
}

pub fn code(r: &ExecTxResult) -> ResultCode {
    ResultCode::from_code(r.code.value()).expect("known code")
}

pub const USERS: &str =
    "CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT NOT NULL, age INTEGER) STRICT";
