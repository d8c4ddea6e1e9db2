//! Name the things every dstorage crate talks about: identities, transactions, payloads and their canonical encoding.

pub mod action;
pub mod caller;
pub mod identity;
pub mod read;
pub mod result;
pub mod tx;
pub mod value;
