//! Modules form layers without cycles (issue 13: dstorage-app's modules imported each other in a circle, `shared`
//! being both the `App` on top and the `Shared` state at the bottom). docs/ARCHITECTURE.md, "Module layers",
//! lists dstorage-app's modules, their layer, visibility and uses; this test reads that table and the sources
//! and fails on any difference, and checks that the modules of every workspace crate form no cycle beyond the ones that table lists as left.
//!
//! A use is a `crate::` path outside comments and test-only items (`#[cfg(test)]`) (`use crate::{a, b::C}` uses `a` and `b`); a name the crate root
//! re-exports (`pub use module::Name;` in lib.rs) counts as its module; one the root defines itself is no use
//! of a module.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A crate's modules and what each uses.
type Graph = BTreeMap<String, BTreeSet<String>>;

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The source without comments (line, doc and block comments), so a module named in prose is no use.
fn strip_comments(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("//") {
            rest = after.find('\n').map_or("", |i| &after[i..]);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |i| &after[i + 2..]);
        } else if let Some(quote) = ["'\"'", "'\\\"'"].iter().find(|q| rest.starts_with(**q)) {
            // A quote character, not the start of a string.
            out.push_str(quote);
            rest = &rest[quote.len()..];
        } else if let Some((hashes, body)) = raw_string_start(rest, out.chars().next_back()) {
            let close = format!("\"{}", "#".repeat(hashes));
            out.push_str("\"\"");
            rest = body.find(&close).map_or("", |i| &body[i + close.len()..]);
        } else if let Some(after) = rest.strip_prefix('"') {
            // Skip string literals whole, so `"http://..."` is not a comment; escapes keep their quote.
            let mut chars = after.char_indices();
            let mut end = after.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        chars.next();
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    _ => {}
                }
            }
            out.push_str("\"\"");
            rest = &after[end..];
        } else {
            let c = rest.chars().next().expect("rest is not empty");
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// At a raw string literal (`r"`, `r#"`, `br##"`, ... not inside an identifier): its hashes and its body.
fn raw_string_start(rest: &str, before: Option<char>) -> Option<(usize, &str)> {
    if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let after_r = rest.strip_prefix("br").or_else(|| rest.strip_prefix('r'))?;
    let hashes = after_r.len() - after_r.trim_start_matches('#').len();
    let body = after_r[hashes..].strip_prefix('"')?;
    Some((hashes, body))
}

fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The source without its test-only items (`#[cfg(test)]` modules and impls): what tests use is no
/// dependency of the module they sit in.
fn strip_test_items(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut lines = source.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "#[cfg(test)]" {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let indent = &line[..line.len() - line.trim_start().len()];
        let Some(item) = lines.next() else { break };
        if item.trim_end().ends_with('{') {
            let close = format!("{indent}}}");
            for inner in lines.by_ref() {
                if inner.trim_end() == close {
                    break;
                }
            }
        }
    }
    out
}

/// The first path segment of every `crate::` path in `source` (every item of a `crate::{...}` group).
fn crate_paths(source: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (i, _) in source.match_indices("crate::") {
        // `dstorage_crate::` or `$crate::` is not this crate.
        let before = source[..i].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let after = &source[i + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let mut depth = 1;
            let mut item_start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => item_start = true,
                    c if item_start && (c.is_ascii_alphanumeric() || c == '_') => {
                        found.insert(ident(&group[j..]).to_string());
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(after);
            if !name.is_empty() {
                found.insert(name.to_string());
            }
        }
    }
    found
}

/// Names the crate root re-exports, by the first segment of the path they come from (`pub use module::{A, B as
/// C};`, over several lines too); an external crate's name is among them and matches no module.
fn root_reexports(root: &str) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for (i, _) in root.match_indices("pub use ") {
        let statement = &root[i + "pub use ".len()..];
        let statement = &statement[..statement.find(';').unwrap_or(statement.len())];
        let module = ident(statement.trim_start());
        let Some((_, rest)) = statement.split_once("::") else {
            continue;
        };
        // The last segment of each item: `a::B` exports B, `B as C` exports C.
        for item in rest.split([',', '{', '}']) {
            let name = item.split_whitespace().last().unwrap_or("");
            let name = name.rsplit("::").next().unwrap_or(name);
            if !name.is_empty() {
                names.insert(name.to_string(), module.to_string());
            }
        }
    }
    names
}

/// The module graph of the crate whose sources are in `src` (its top-level modules: `x.rs` or `x/mod.rs`; a
/// module's own submodules count as the module). A `crate::` name that is neither a module nor a re-export of
/// one is an error, so nothing slips by unclassified.
fn module_graph(src: &Path) -> Graph {
    let root_file = ["lib.rs", "main.rs"]
        .iter()
        .map(|f| src.join(f))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{} has no lib.rs or main.rs", src.display()));
    let root = strip_comments(&read(&root_file));
    let reexports = root_reexports(&root);
    // Items the root defines itself are below every module; a use of one is no edge between modules.
    let defined_in_root = |name: &str| {
        ["fn", "struct", "enum", "type", "const", "static", "trait"]
            .iter()
            .any(|kw| {
                root.match_indices(&format!("{kw} {name}")).any(|(i, m)| {
                    !root[i + m.len()..]
                        .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                })
            })
    };
    let mut files: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for entry in std::fs::read_dir(src).expect("read src") {
        let path = entry.expect("dir entry").path();
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("utf-8 name")
            .to_string();
        if path.is_dir() {
            files.insert(name, rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") && name != "lib" && name != "main" {
            files.entry(name).or_default().push(path);
        }
    }
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    let mut graph = Graph::new();
    for (module, paths) in &files {
        let mut uses = BTreeSet::new();
        for path in paths {
            for name in crate_paths(&strip_test_items(&strip_comments(&read(path)))) {
                let used = if modules.contains(&name) {
                    name
                } else if let Some(m) = reexports.get(&name) {
                    if !modules.contains(m) {
                        // Re-exported from another crate.
                        continue;
                    }
                    m.clone()
                } else if defined_in_root(&name) {
                    continue;
                } else {
                    panic!(
                        "{}: crate::{name} is neither a module nor a name the crate root re-exports",
                        path.display()
                    )
                };
                if &used != module {
                    uses.insert(used);
                }
            }
        }
        graph.insert(module.clone(), uses);
    }
    graph
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// The modules of `graph` that lie on a cycle (they reach themselves through their uses).
fn on_cycles(graph: &Graph) -> BTreeSet<String> {
    let reaches_itself = |start: &String| {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<&String> = graph[start].iter().collect();
        while let Some(m) = todo.pop() {
            if m == start {
                return true;
            }
            if seen.insert(m) {
                todo.extend(graph.get(m).into_iter().flatten());
            }
        }
        false
    };
    graph
        .keys()
        .filter(|m| reaches_itself(m))
        .cloned()
        .collect()
}

/// A row of the documented table.
struct Row {
    layer: u32,
    public: bool,
    uses: BTreeSet<String>,
}

fn backticked(cell: &str) -> BTreeSet<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The `dstorage-app` table of docs/ARCHITECTURE.md, "Module layers".
fn documented() -> BTreeMap<String, Row> {
    let doc = read(&crates_dir().join("../docs/ARCHITECTURE.md"));
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with("Module layers"))
        .expect("docs/ARCHITECTURE.md has a \"Module layers\" section");
    let mut rows = BTreeMap::new();
    for line in section.lines() {
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').collect();
        let [layer, module, visibility, uses] = cells[..] else {
            continue;
        };
        let Ok(layer) = layer.trim().split(' ').next().unwrap_or("").parse::<u32>() else {
            continue;
        };
        let module = module.trim().trim_matches('`').to_string();
        let public = match visibility.trim() {
            "pub" => true,
            "crate" => false,
            other => panic!("module {module}: visibility {other:?} is neither pub nor crate"),
        };
        rows.insert(
            module,
            Row {
                layer,
                public,
                uses: backticked(uses),
            },
        );
    }
    rows
}

#[test]
fn app_modules_use_exactly_what_architecture_md_lists_and_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = module_graph(&src);
    let rows = documented();
    let in_code: BTreeSet<&String> = graph.keys().collect();
    let in_docs: BTreeSet<&String> = rows.keys().collect();
    assert_eq!(
        in_code, in_docs,
        "dstorage-app's modules and the rows of docs/ARCHITECTURE.md \"Module layers\" differ"
    );
    for (module, uses) in &graph {
        let row = &rows[module];
        assert_eq!(
            uses, &row.uses,
            "module {module} uses {uses:?}; docs/ARCHITECTURE.md lists {:?}",
            row.uses
        );
        for used in uses {
            assert!(
                rows[used].layer <= row.layer,
                "module {module} (layer {}) uses {used} of a higher layer ({})",
                row.layer,
                rows[used].layer
            );
        }
    }
    assert_eq!(on_cycles(&graph), BTreeSet::new());
}

#[test]
fn app_modules_are_crate_private_unless_documented_as_used_outside() {
    let root = strip_comments(&read(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"),
    ));
    let rows = documented();
    for line in root.lines().map(str::trim) {
        let (public, decl) = if let Some(d) = line.strip_prefix("pub mod ") {
            (true, d)
        } else if let Some(d) = line
            .strip_prefix("pub(crate) mod ")
            .or_else(|| line.strip_prefix("mod "))
        {
            (false, d)
        } else {
            continue;
        };
        let module = ident(decl);
        let row = rows
            .get(module)
            .unwrap_or_else(|| panic!("module {module} has no row in docs/ARCHITECTURE.md"));
        assert_eq!(
            public, row.public,
            "module {module}: lib.rs says pub = {public}, docs/ARCHITECTURE.md says pub = {}",
            row.public
        );
    }
}

/// The "cycles left" table of docs/ARCHITECTURE.md, "Module layers": crate name to the modules on a cycle.
fn documented_cycles() -> BTreeMap<String, BTreeSet<String>> {
    let doc = read(&crates_dir().join("../docs/ARCHITECTURE.md"));
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with("Module layers"))
        .expect("docs/ARCHITECTURE.md has a \"Module layers\" section");
    let mut left = BTreeMap::new();
    for line in section.lines() {
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').collect();
        let [krate, modules] = cells[..] else {
            continue;
        };
        let krate = krate.trim().trim_matches('`');
        if krate.starts_with("dstorage-") {
            left.insert(krate.to_string(), backticked(modules));
        }
    }
    left
}

#[test]
fn no_crate_has_a_module_cycle_beyond_those_architecture_md_lists_as_left() {
    let documented = documented_cycles();
    let mut checked = 0;
    for entry in std::fs::read_dir(crates_dir()).expect("read crates/") {
        let dir = entry.expect("dir entry").path();
        let src = dir.join("src");
        if !src.is_dir() {
            continue;
        }
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 name");
        assert_eq!(
            on_cycles(&module_graph(&src)),
            documented.get(name).cloned().unwrap_or_default(),
            "{name}: the modules on a cycle differ from docs/ARCHITECTURE.md's list of cycles left"
        );
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} crates found");
}

#[test]
fn the_graph_reader_sees_grouped_uses_and_ignores_comments() {
    let source = "use crate::{a, b::{C, D}, e::F};\n// crate::g in a comment\n/* crate::h */\n\
                  let s = \"crate::i in a string\"; let q = '\"'; crate::j::k(); dstorage_crate::l; $crate::m; \
                  r#\"crate::n \" // \"#; crate::o";
    let found = crate_paths(&strip_comments(source));
    let expected: BTreeSet<String> = ["a", "b", "e", "j", "o"].map(String::from).into();
    assert_eq!(found, expected);
    let with_tests = "use crate::p;\n#[cfg(test)]\nmod tests {\n    use crate::q;\n    fn f() {\n    }\n}\n\
                      #[cfg(test)]\nuse crate::r;\nimpl S {\n    #[cfg(test)]\n    fn g() {\n        crate::t();\n    }\n}\n";
    let found = crate_paths(&strip_test_items(&strip_comments(with_tests)));
    assert_eq!(found, BTreeSet::from(["p".to_string()]));
    let graph: Graph = [
        ("x", vec!["y"]),
        ("y", vec!["z"]),
        ("z", vec!["x"]),
        ("w", vec!["x"]),
        ("v", vec![]),
    ]
    .into_iter()
    .map(|(m, u)| (m.to_string(), u.into_iter().map(String::from).collect()))
    .collect();
    let expected: BTreeSet<String> = ["x", "y", "z"].map(String::from).into();
    assert_eq!(on_cycles(&graph), expected);
}
