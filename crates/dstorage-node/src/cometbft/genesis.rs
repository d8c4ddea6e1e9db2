//! The network's genesis file: chain id, first validators (equal power), consensus parameters, app state.

use std::path::Path;

use base64::Engine as _;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::config::write_atomic;
use super::error::{CometError, Result};

/// Voting power of every validator: all validators weigh the same (the design brief, "Validators").
pub const VALIDATOR_POWER: i64 = 10;

/// Largest block, in bytes: room for many transactions of up to 1 MiB, small enough to gossip quickly on one
/// machine (CometBFT's default is 21 MiB).
pub const MAX_BLOCK_BYTES: i64 = 4 * 1024 * 1024;

/// CometBFT's limit on chain id length.
const MAX_CHAIN_ID_LEN: usize = 50;

/// One validator of the genesis set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenesisValidator {
    /// The validator's ed25519 public key, base64 ([`super::NodeIdentity::validator_pubkey`]).
    pub pubkey: String,
    /// A human name (the node's moniker).
    pub name: String,
}

impl GenesisValidator {
    /// A validator from its base64 public key and name.
    pub fn new(pubkey: impl Into<String>, name: impl Into<String>) -> Self {
        GenesisValidator {
            pubkey: pubkey.into(),
            name: name.into(),
        }
    }
}

/// What a network's genesis says. Every node of a network must get the same bytes, so everything that varies
/// (notably the time) is given by the caller, never read here.
#[derive(Debug, Clone, PartialEq)]
pub struct GenesisSpec {
    /// The chain id, which transactions also sign over.
    pub chain_id: String,
    /// The first validators, each with power [`VALIDATOR_POWER`].
    pub validators: Vec<GenesisValidator>,
    /// RFC 3339 UTC time, e.g. `2025-01-01T00:00:00Z`; the time of block 1.
    pub genesis_time: String,
    /// The application's genesis state, passed to InitChain.
    pub app_state: serde_json::Value,
    /// Height of the first block (1 for a new chain).
    pub initial_height: u64,
}

impl GenesisSpec {
    /// The genesis file's bytes (pretty JSON with a fixed key order, so equal specs give equal bytes).
    pub fn to_json(&self) -> Result<Vec<u8>> {
        let invalid = |reason: String| {
            CometError::Invalid(format!("genesis for chain {:?}: {reason}", self.chain_id))
        };
        if self.chain_id.is_empty() || self.chain_id.len() > MAX_CHAIN_ID_LEN {
            return Err(invalid(format!(
                "chain id must have 1 to {MAX_CHAIN_ID_LEN} bytes"
            )));
        }
        if self.validators.is_empty() {
            return Err(invalid("a network needs at least one validator".into()));
        }
        if self.initial_height == 0 {
            return Err(invalid("initial height must be at least 1".into()));
        }
        if !self.genesis_time.ends_with('Z')
            || humantime::parse_rfc3339(&self.genesis_time).is_err()
        {
            return Err(invalid(format!(
                "genesis time {:?} is not an RFC 3339 UTC time",
                self.genesis_time
            )));
        }
        let mut validators = Vec::with_capacity(self.validators.len());
        for v in &self.validators {
            let key = base64::engine::general_purpose::STANDARD
                .decode(&v.pubkey)
                .ok()
                .filter(|k| k.len() == 32)
                .ok_or_else(|| {
                    invalid(format!(
                        "validator {:?} key {:?} is not a base64 ed25519 key",
                        v.name, v.pubkey
                    ))
                })?;
            if validators
                .iter()
                .any(|g: &ValidatorJson| g.pub_key.value == v.pubkey)
            {
                return Err(invalid(format!("validator key {} appears twice", v.pubkey)));
            }
            validators.push(ValidatorJson {
                address: address_of(&key),
                pub_key: PubKeyJson {
                    r#type: "tendermint/PubKeyEd25519",
                    value: v.pubkey.clone(),
                },
                power: VALIDATOR_POWER.to_string(),
                name: v.name.clone(),
            });
        }
        let doc = GenesisJson {
            genesis_time: &self.genesis_time,
            chain_id: &self.chain_id,
            initial_height: self.initial_height.to_string(),
            consensus_params: ConsensusParamsJson {
                block: BlockParams {
                    max_bytes: MAX_BLOCK_BYTES.to_string(),
                    max_gas: "-1",
                },
                // CometBFT's defaults: evidence older than 100,000 blocks and 48 hours is void.
                evidence: EvidenceParams {
                    max_age_num_blocks: "100000",
                    max_age_duration: "172800000000000",
                    max_bytes: "1048576",
                },
                validator: ValidatorParams {
                    pub_key_types: ["ed25519"],
                },
                version: VersionParams { app: "0" },
                abci: AbciParams {
                    vote_extensions_enable_height: "0",
                },
            },
            validators,
            app_hash: "",
            app_state: &self.app_state,
        };
        let mut bytes = serde_json::to_vec_pretty(&doc).map_err(|e| invalid(e.to_string()))?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}

/// Write the genesis of `spec` to `<home>/config/genesis.json` (home is the CometBFT home) and return its bytes.
pub fn write_genesis(home: &Path, spec: &GenesisSpec) -> Result<Vec<u8>> {
    let bytes = spec.to_json()?;
    write_genesis_bytes(home, &bytes)?;
    Ok(bytes)
}

/// Write given genesis bytes into a CometBFT home, so every node of a network gets a byte-identical copy.
pub(crate) fn write_genesis_bytes(home: &Path, bytes: &[u8]) -> Result<()> {
    let dir = home.join("config");
    std::fs::create_dir_all(&dir).map_err(CometError::io("create folder", &dir))?;
    write_atomic(&dir.join("genesis.json"), bytes)
}

/// The CometBFT address of a base64 ed25519 public key: upper-case hex of SHA-256(key)[..20].
pub fn validator_address(pubkey_base64: &str) -> Result<String> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(pubkey_base64)
        .ok()
        .filter(|k| k.len() == 32)
        .ok_or_else(|| {
            CometError::Invalid(format!(
                "{pubkey_base64:?} is not a base64 ed25519 public key"
            ))
        })?;
    Ok(address_of(&key))
}

pub(crate) fn address_of(key: &[u8]) -> String {
    Sha256::digest(key)[..20]
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

// The genesis document in CometBFT's JSON shape: int64 values are strings, fields in CometBFT's order.
#[derive(Serialize)]
struct GenesisJson<'a> {
    genesis_time: &'a str,
    chain_id: &'a str,
    initial_height: String,
    consensus_params: ConsensusParamsJson,
    validators: Vec<ValidatorJson>,
    app_hash: &'static str,
    app_state: &'a serde_json::Value,
}

#[derive(Serialize)]
struct ConsensusParamsJson {
    block: BlockParams,
    evidence: EvidenceParams,
    validator: ValidatorParams,
    version: VersionParams,
    abci: AbciParams,
}

#[derive(Serialize)]
struct BlockParams {
    max_bytes: String,
    /// -1: no gas limit in CometBFT; the app meters SQL cost itself and fills blocks in PrepareProposal.
    max_gas: &'static str,
}

#[derive(Serialize)]
struct EvidenceParams {
    max_age_num_blocks: &'static str,
    max_age_duration: &'static str,
    max_bytes: &'static str,
}

#[derive(Serialize)]
struct ValidatorParams {
    pub_key_types: [&'static str; 1],
}

#[derive(Serialize)]
struct VersionParams {
    app: &'static str,
}

#[derive(Serialize)]
struct AbciParams {
    /// "0": vote extensions off until the app needs them (chain-driver votes may move there).
    vote_extensions_enable_height: &'static str,
}

#[derive(Serialize)]
struct ValidatorJson {
    address: String,
    pub_key: PubKeyJson,
    power: String,
    name: String,
}

#[derive(Serialize)]
struct PubKeyJson {
    r#type: &'static str,
    value: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> GenesisSpec {
        GenesisSpec {
            chain_id: "dstorage-test".into(),
            validators: vec![GenesisValidator::new(
                "kmalVNk0vtBYzvjXwdKljY4qJQLau2/kDWyS4xqjAek=",
                "node0",
            )],
            genesis_time: "2025-01-01T00:00:00Z".into(),
            app_state: serde_json::json!({"k": 1}),
            initial_height: 1,
        }
    }

    #[test]
    fn validator_address_matches_cometbft() {
        // Pair taken from a priv_validator_key.json written by `cometbft init`.
        let address = validator_address("kmalVNk0vtBYzvjXwdKljY4qJQLau2/kDWyS4xqjAek=").unwrap();
        assert_eq!(address, "D383D007FADFD7406B50A64E974B1C0E76E96741");
    }

    #[test]
    fn genesis_has_equal_power_and_string_ints() {
        let doc: serde_json::Value = serde_json::from_slice(&spec().to_json().unwrap()).unwrap();
        assert_eq!(doc["validators"][0]["power"], "10");
        assert_eq!(doc["initial_height"], "1");
        assert_eq!(
            doc["consensus_params"]["abci"]["vote_extensions_enable_height"],
            "0"
        );
        assert_eq!(
            doc["consensus_params"]["block"]["max_bytes"],
            MAX_BLOCK_BYTES.to_string()
        );
        assert_eq!(doc["app_state"]["k"], 1);
    }

    #[test]
    fn bad_specs_are_refused_with_the_value() {
        let mut s = spec();
        s.genesis_time = "yesterday".into();
        assert!(s.to_json().unwrap_err().to_string().contains("yesterday"));
        let mut s = spec();
        s.validators.push(s.validators[0].clone());
        assert!(s.to_json().unwrap_err().to_string().contains("twice"));
        let mut s = spec();
        s.validators[0].pubkey = "AAAA".into();
        assert!(s.to_json().unwrap_err().to_string().contains("AAAA"));
        let mut s = spec();
        s.validators.clear();
        assert!(s.to_json().is_err());
    }
}
