//! dstorage: apply the patches in `PATCHES` to the pristine amalgamation at build time, so
//! the repository keeps SQLite's source untouched and the patches are the whole difference.
//!
//! A patch file is a comment, then blocks of `@@ FIND <title>`, the exact text to find,
//! `@@ REPLACE`, its replacement, `@@ END`. Every FIND text must occur exactly once in
//! sqlite3.c (as the patches before it left it), so a changed amalgamation fails the build
//! instead of being patched wrongly.

use std::path::{Path, PathBuf};

/// The patches, relative to the crate root, in the order they are applied.
pub const PATCHES: [&str; 2] = ["dstorage-no-float.patch", "dstorage-bytes-moved.patch"];

/// Write the patched copy of `source` (the crate's sqlite3/sqlite3.c) into `out_dir` and
/// return its path.
pub fn patched_source(source: &Path, out_dir: &str) -> PathBuf {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let source_path = Path::new(&manifest).join(source);
    let mut text = std::fs::read_to_string(&source_path).expect("read sqlite3.c");
    for name in PATCHES {
        let patch_path = Path::new(&manifest).join(name);
        println!("cargo:rerun-if-changed={}", patch_path.display());
        let patch = std::fs::read_to_string(&patch_path)
            .unwrap_or_else(|e| panic!("read {name}: {e}"));
        let blocks = parse(name, &patch);
        assert!(!blocks.is_empty(), "{name} holds no blocks");
        for (title, find, replace) in &blocks {
            let count = text.matches(find.as_str()).count();
            assert!(
                count == 1,
                "{name}: the text of block `{title}` occurs {count} times in sqlite3.c, not once"
            );
            text = text.replacen(find.as_str(), replace, 1);
        }
    }
    let out = Path::new(out_dir).join("sqlite3.c");
    std::fs::write(&out, text).expect("write the patched sqlite3.c");
    out
}

/// The (title, find, replace) blocks of the patch `name`.
fn parse(name: &str, patch: &str) -> Vec<(String, String, String)> {
    enum At {
        Comment,
        Find,
        Replace,
    }
    let mut blocks = Vec::new();
    let mut at = At::Comment;
    let (mut title, mut find, mut replace) = (String::new(), String::new(), String::new());
    for line in patch.split_inclusive('\n') {
        if let Some(t) = line.strip_prefix("@@ FIND ") {
            assert!(matches!(at, At::Comment), "{name}: FIND inside a block");
            title = t.trim().to_owned();
            find.clear();
            replace.clear();
            at = At::Find;
        } else if line.trim_end() == "@@ REPLACE" {
            assert!(matches!(at, At::Find), "{name}: REPLACE without FIND");
            at = At::Replace;
        } else if line.trim_end() == "@@ END" {
            assert!(matches!(at, At::Replace), "{name}: END without REPLACE");
            blocks.push((title.clone(), find.clone(), replace.clone()));
            at = At::Comment;
        } else {
            match at {
                At::Comment => {}
                At::Find => find.push_str(line),
                At::Replace => replace.push_str(line),
            }
        }
    }
    assert!(matches!(at, At::Comment), "{name}: unterminated block");
    blocks
}
