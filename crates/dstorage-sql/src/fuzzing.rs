//! The fuzz body shared by the cargo-fuzz target and its stable-Rust twin test.

use crate::{Changeset, Engine, SqlError};

/// Cost limit for fuzzed statements: small, so runaway inputs end quickly.
const FUZZ_COST_LIMIT: u64 = 20_000;

/// A fuzzing engine: one schema `f` with a table `t`, on a file in `dir`.
pub fn fuzz_engine(dir: &std::path::Path) -> Result<Engine, SqlError> {
    let mut engine = Engine::open(&dir.join("fuzz.sqlite"), crate::EngineConfig::default())?;
    let mut block = engine.begin_block()?;
    block.create_schema("f")?;
    block.execute(
        "f",
        "CREATE TABLE t(id INTEGER PRIMARY KEY, s TEXT, b BLOB, n INTEGER) STRICT; \
         CREATE INDEX t_n ON t(n); INSERT INTO t VALUES (1, 'a', X'00', 5), (2, NULL, NULL, NULL)",
        1_000_000,
    )?;
    block.commit()?;
    Ok(engine)
}

/// Feed `data` to the guard or the decoder. The first byte picks which: even bytes run the
/// rest as SQL text in a block that is then discarded (and estimate it, and read it through
/// a reader); odd bytes decode the rest as changeset bytes. Errors are expected; panics and
/// non-canonical decodes are bugs.
pub fn fuzz_one(engine: &mut Engine, data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    if selector % 2 == 0 {
        let sql = String::from_utf8_lossy(rest);
        let _ = engine.estimate("f", &sql);
        if let Ok(mut reader) = engine.reader() {
            let _ = reader.query("f", &sql, FUZZ_COST_LIMIT);
        }
        if let Ok(mut block) = engine.begin_block() {
            let _ = block.execute("f", &sql, FUZZ_COST_LIMIT);
            let cs = block.changeset();
            if let Ok(cs) = cs {
                let bytes = cs.encode();
                assert_eq!(
                    Changeset::decode(&bytes).ok().as_ref(),
                    Some(&cs),
                    "a block's changeset must round-trip"
                );
            }
            let _ = block.discard();
        }
    } else if let Ok(cs) = Changeset::decode(rest) {
        assert_eq!(
            cs.encode(),
            rest,
            "decode accepted a non-canonical encoding"
        );
        let _ = cs.to_string();
    }
}
