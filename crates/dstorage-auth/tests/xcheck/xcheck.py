"""Sign and verify with independent implementations, for dstorage-auth's cross-check test.

eth_personal_sign: eth-account. secp256k1_sha256: eth-keys (raw ECDSA over a SHA-256 digest), pycryptodome's
RIPEMD-160 and the bech32 reference implementation. ed25519, near_nep413, solana_sign_message: PyNaCl (libsodium),
with base58 from the `base58` package and NEP-413's borsh payload spelled out below from the NEP text.

Usage:
  xcheck.py sign SEED COUNT   -> JSON list of cases signed here, for Rust to verify
  xcheck.py verify            <- JSON list of cases on stdin; -> JSON list of {"valid", "identity"}
A case is {"standard", "sender", "message", "signature"} (hex) plus "identity" when signed here.
"""

import hashlib
import json
import random
import struct
import sys

import base58
import bech32
from Crypto.Hash import RIPEMD160
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_keys import keys
from nacl.signing import SigningKey, VerifyKey

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
NEP413_TAG = (1 << 31) + 413
NEP413_RECIPIENT = "dstorage"
COSMOS_PREFIX = "cosmos"


def cosmos_address(compressed):
    sha = hashlib.sha256(compressed).digest()
    return bech32.bech32_encode(COSMOS_PREFIX, bech32.convertbits(RIPEMD160.new(sha).digest(), 8, 5))


def borsh_string(text):
    data = text.encode("utf-8")
    return struct.pack("<I", len(data)) + data


def nep413_hash(message, nonce, recipient, callback_url=None):
    payload = struct.pack("<I", NEP413_TAG) + borsh_string(message) + nonce + borsh_string(recipient)
    payload += b"\x00" if callback_url is None else b"\x01" + borsh_string(callback_url)
    return hashlib.sha256(payload).digest()


def random_message(rng):
    # Text, since NEP-413 signs strings: ASCII, multi-byte characters, newlines, sometimes empty.
    alphabet = "abcXYZ019 \n:/-_é漢🙂\u0000"
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 120)))


def sign_cases(seed, count):
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        message = random_message(rng)
        raw = message.encode("utf-8")
        secret = rng.randbytes(32)
        # eth_personal_sign with eth-account.
        acct = Account.from_key(secret)
        sig = Account.sign_message(encode_defunct(primitive=raw), secret).signature
        cases.append({"standard": "eth_personal_sign", "sender": acct.address[2:].lower(),
                      "message": raw.hex(), "signature": bytes(sig).hex(), "identity": acct.address})
        # secp256k1_sha256 with eth-keys, normalised to low-S as Cosmos SDK signers do.
        key = keys.PrivateKey(secret)
        s = key.sign_msg_hash(hashlib.sha256(raw).digest())
        low_s = s.s if s.s <= N // 2 else N - s.s
        compressed = key.public_key.to_compressed_bytes()
        cases.append({"standard": "secp256k1_sha256", "sender": compressed.hex(), "message": raw.hex(),
                      "signature": (s.r.to_bytes(32, "big") + low_s.to_bytes(32, "big")).hex(),
                      "identity": cosmos_address(compressed)})
        # The ed25519 family with PyNaCl.
        signing = SigningKey(secret)
        public = bytes(signing.verify_key)
        cases.append({"standard": "ed25519", "sender": public.hex(), "message": raw.hex(),
                      "signature": signing.sign(raw).signature.hex(), "identity": public.hex()})
        cases.append({"standard": "solana_sign_message", "sender": public.hex(), "message": raw.hex(),
                      "signature": signing.sign(raw).signature.hex(),
                      "identity": base58.b58encode(public).decode()})
        nonce = rng.randbytes(32)
        callback = rng.choice([None, "https://app.example/callback"])
        field = signing.sign(nep413_hash(message, nonce, NEP413_RECIPIENT, callback)).signature + nonce
        if callback is not None:
            field += callback.encode()
        cases.append({"standard": "near_nep413", "sender": public.hex(), "message": raw.hex(),
                      "signature": field.hex(), "identity": public.hex()})
    return cases


def verify_case(case):
    standard = case["standard"]
    sender = bytes.fromhex(case["sender"])
    raw = bytes.fromhex(case["message"])
    sig = bytes.fromhex(case["signature"])
    try:
        if standard == "eth_personal_sign":
            address = Account.recover_message(encode_defunct(primitive=raw), signature=sig)
            return {"valid": address.lower() == "0x" + sender.hex(), "identity": address}
        if standard == "secp256k1_sha256":
            public = keys.PublicKey.from_compressed_bytes(sender)
            r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
            ok = len(sig) == 64 and public.verify_msg_hash(
                hashlib.sha256(raw).digest(), keys.NonRecoverableSignature(rs=(r, s)))
            return {"valid": bool(ok), "identity": cosmos_address(sender)}
        if standard in ("ed25519", "solana_sign_message"):
            VerifyKey(sender).verify(raw, sig)
            identity = sender.hex() if standard == "ed25519" else base58.b58encode(sender).decode()
            return {"valid": True, "identity": identity}
        if standard == "near_nep413":
            callback = sig[96:].decode() if len(sig) > 96 else None
            digest = nep413_hash(raw.decode("utf-8"), sig[64:96], NEP413_RECIPIENT, callback)
            VerifyKey(sender).verify(digest, sig[:64])
            return {"valid": True, "identity": sender.hex()}
    except Exception as e:  # noqa: BLE001 - any refusal by the library is "invalid"
        return {"valid": False, "identity": None, "error": str(e)}
    return {"valid": False, "identity": None, "error": "unknown standard " + standard}


def main():
    if sys.argv[1:2] == ["sign"]:
        json.dump(sign_cases(int(sys.argv[2]), int(sys.argv[3])), sys.stdout)
    elif sys.argv[1:2] == ["verify"]:
        json.dump([verify_case(c) for c in json.load(sys.stdin)], sys.stdout)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
