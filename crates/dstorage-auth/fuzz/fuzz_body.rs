// The fuzz body, shared by the cargo-fuzz target (fuzz_targets/verify.rs) and the stable-Rust test
// (tests/fuzz_body_survives_random_input.rs), which `include!` it.
//
// Properties: nothing panics; a signature that verifies yields an identity that verifies again through
// `verify_identity`; an identity that parses gives a canonical identity that parses to the same sender.

/// Lengths the standards care about, so random input reaches past the length checks often.
const INTERESTING_LENGTHS: [usize; 12] = [0, 1, 20, 31, 32, 33, 63, 64, 65, 96, 97, 130];

/// Take `n` bytes from the front of `data` (fewer if it runs out).
fn take<'a>(data: &mut &'a [u8], n: usize) -> &'a [u8] {
    let n = n.min(data.len());
    let (head, tail) = data.split_at(n);
    *data = tail;
    head
}

/// A length: one of the interesting ones, or any byte value.
fn length(data: &mut &[u8]) -> usize {
    match take(data, 1) {
        [b] if b & 0x80 == 0 => INTERESTING_LENGTHS[usize::from(*b) % INTERESTING_LENGTHS.len()],
        [b] => usize::from(b & 0x7f),
        _ => 0,
    }
}

#[allow(dead_code)]
pub fn fuzz_one(data: &[u8]) {
    let registry = dstorage_auth::default_registry();
    let names = registry.names();
    let mut rest = data;
    let standard = match take(&mut rest, 1) {
        [b] => names[usize::from(*b) % names.len()],
        _ => names[0],
    };
    let authenticator = match registry.get(standard) {
        Ok(a) => a,
        Err(e) => panic!("registered name {standard} not found: {e}"),
    };
    let sender_len = length(&mut rest);
    let signature_len = length(&mut rest);
    let sender = take(&mut rest, sender_len);
    let signature = take(&mut rest, signature_len);
    let message = rest;

    if authenticator.verify(sender, message, signature).is_ok() {
        let identity = match authenticator.identifier(sender) {
            Ok(id) => id,
            Err(e) => panic!("{standard}: verified but has no identity: {e}"),
        };
        if let Err(e) = authenticator.verify_identity(&identity, message, signature) {
            panic!("{standard}: verified by sender but not by identity {identity}: {e}");
        }
    }
    let _ = authenticator.identifier(sender);

    // The whole input as an identity string, for every standard.
    let text = String::from_utf8_lossy(data);
    for name in &names {
        let Ok(a) = registry.get(name) else { continue };
        if let Ok(parsed) = a.parse_identity(&text) {
            let canonical = match a.identifier(&parsed) {
                Ok(id) => id,
                Err(e) => panic!("{name}: parsed {text:?} but cannot name it: {e}"),
            };
            // secp256k1_sha256 parses a hex key but names it by address (a hash), which cannot parse back.
            if *name != "secp256k1_sha256" {
                match a.parse_identity(&canonical) {
                    Ok(again) if again == parsed => {}
                    other => panic!(
                        "{name}: canonical {canonical} of {text:?} does not parse back: {other:?}"
                    ),
                }
            }
        }
        let _ = a.verify_identity(&text, message, signature);
    }
}
