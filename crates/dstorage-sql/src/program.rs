//! Read SQLite's compiled program of a single-row INSERT and decide whether it may run
//! without the per-call savepoint.
//!
//! The engine wraps every call in `SAVEPOINT` / `RELEASE` so that any failure leaves
//! nothing behind. For one statement, SQLite's own statement atomicity already undoes a
//! failed statement, so the savepoint is only needed when something can fail *after* the
//! statement has changed the database: the engine's post-statement cost check, or a
//! conflict resolution that keeps partial work (`FAIL`). This module proves from the
//! program's instructions (an `EXPLAIN` listing) that neither can happen:
//!
//! - every instruction is one whose control flow is known here, and the control-flow
//!   graph is acyclic, so no instruction runs twice: a run takes at most as many VM steps
//!   as the program has instructions; no instruction can make a value longer than the
//!   program's constants and the bound parameters, so the byte charge of the row it writes
//!   and of the bytes the VM moves (records built and written, values copied and compared)
//!   is bounded too (`InsertProof::cost_bound`); the engine then requires that bound to fit
//!   the call's budget, so the cost check cannot fail and the progress handler never stops
//!   it;
//! - every error halt uses the ABORT resolution (SQLite undoes the statement), not FAIL
//!   (keeps earlier changes) or ROLLBACK (ends the block's transaction);
//! - from the first write on, only instructions that cannot raise an SQL error follow
//!   (more writes of the same row, closing cursors, register tests, the final halt), so
//!   every check (NOT NULL, CHECK, types, keys, foreign keys) runs before anything is
//!   written and the change log's pre-update hook never sees a change that is then undone.
//!
//! Anything else (an opcode not listed here, a loop, a subprogram for triggers or foreign-key
//! actions, a REPLACE delete) makes the proof fail, and the call takes the savepoint path.
//! See docs/sql.md, "Atomicity".

use rusqlite::Connection;

/// One instruction of an `EXPLAIN` listing: its opcode and the operands that decide
/// control flow and error handling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Op {
    /// The instruction's address; a listing restarts at 0 for each trigger or foreign-key
    /// action subprogram SQLite appends after the main program.
    pub addr: i64,
    pub opcode: String,
    pub p1: i64,
    pub p2: i64,
    pub p3: i64,
    /// Length of the P4 operand as `EXPLAIN` prints it (a constant string's text).
    pub p4_len: u64,
    /// P4 as `EXPLAIN` prints it (a function's name and argument count, a key's
    /// affinities...), if any.
    pub p4: Option<String>,
}

/// SQLite's `OE_Abort`: the statement is undone and the transaction goes on.
const OE_ABORT: i64 = 2;

/// Where an instruction can go next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    /// Always to the next instruction.
    Next,
    /// To the next instruction or to P2 (SQLite's `jump` opcodes).
    Branch,
    /// To the next instruction, or to P2 when P2 is not 0 (SQLite's `jump0` opcodes).
    BranchIfP2,
    /// To P2 only.
    Goto,
    /// To P2, or to the next instruction when P2 is 0 (`Init`).
    Init,
    /// Nowhere: the program stops (`Halt`), with an error when P1 is not 0.
    Halt,
    /// To the next instruction, or stops with error P1 (`HaltIfNull`).
    HaltIfNull,
}

/// The opcodes a single-row INSERT compiles to, with their control flow, checked against
/// the `jump`/`jump0` marks of the opcode list in the bundled SQLite 3.54.1 source. An
/// opcode missing here (`Program`, `Gosub`, `Return`, `Yield`, `Delete`, `FkCounter`,
/// `ResultRow`, loops' `Next`...) makes the proof fail. So do those that can make a value
/// larger than the statement's constants and parameters (`Function`, `PureFunc`,
/// `Concat`): the bytes a run writes and moves must be bounded beforehand
/// (`InsertProof::cost_bound`).
fn flow(opcode: &str) -> Option<Flow> {
    Some(match opcode {
        "Init" => Flow::Init,
        "Goto" => Flow::Goto,
        "Halt" => Flow::Halt,
        "HaltIfNull" => Flow::HaltIfNull,
        "NotNull" | "IsNull" | "NotExists" | "NoConflict" | "Found" | "NotFound" | "Eq" | "Ne"
        | "Lt" | "Le" | "Gt" | "Ge" | "If" | "IfNot" => Flow::Branch,
        "MustBeInt" => Flow::BranchIfP2,
        "Transaction" | "OpenWrite" | "OpenRead" | "Close" | "SoftNull" | "Null" | "Variable"
        | "Integer" | "Int64" | "String8" | "String" | "Blob" | "SCopy" | "Copy" | "IntCopy"
        | "Move" | "TypeCheck" | "Affinity" | "MakeRecord" | "NewRowid" | "Add" | "Subtract"
        | "Multiply" | "Divide" | "Remainder" | "BitAnd" | "BitOr" | "BitNot" | "ShiftLeft"
        | "ShiftRight" | "Not" | "Cast" | "Noop" | "Insert" | "IdxInsert" => Flow::Next,
        _ => return None,
    })
}

/// Instructions that change the database.
fn writes(op: &Op) -> bool {
    matches!(op.opcode.as_str(), "Insert" | "IdxInsert")
}

/// Instructions that cannot raise an SQL error (only I/O or memory failures, which make
/// SQLite roll back the whole transaction on either path), so they may follow a write.
fn cannot_fail(op: &Op) -> bool {
    match op.opcode.as_str() {
        "Insert" | "IdxInsert" | "Close" | "IsNull" | "NotNull" | "Goto" => true,
        "Halt" => op.p1 == 0,
        _ => false,
    }
}

/// The instructions `op` at `addr` can go to next, or None if one is outside the program.
fn successors(op: &Op, addr: usize, len: usize) -> Option<Vec<usize>> {
    let next = addr + 1;
    let target = usize::try_from(op.p2).ok();
    let to = match flow(&op.opcode)? {
        Flow::Next | Flow::HaltIfNull => vec![next],
        Flow::Branch => vec![next, target?],
        Flow::BranchIfP2 if op.p2 == 0 => vec![next],
        Flow::BranchIfP2 => vec![next, target?],
        Flow::Goto => vec![target?],
        Flow::Init if op.p2 == 0 => vec![next],
        Flow::Init => vec![target?],
        Flow::Halt => vec![],
    };
    to.iter().all(|&t| t < len).then_some(to)
}

/// What the savepoint-free proof found in a single-row insert's program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct InsertProof {
    /// The most VM steps a run takes (`step_bound`).
    pub steps: u64,
    /// Columns of the row written (generated ones included).
    pub columns: u64,
    /// The longest constant string or blob in the program (a literal or a default).
    pub longest_constant: u64,
    /// The bytes the VM moves in a run (counted by our SQLite patch, see
    /// `moved_values`) are at most this many values' worth: see `InsertProof::cost_bound`.
    pub moved_values: u64,
}

/// What one written value may count besides the longest constant or parameter it can come
/// from: the meter's per-value overhead, plus 20 bytes for an integer stored as text (the
/// longest decimal i64).
const VALUE_BOUND: u64 = crate::meter::VALUE_OVERHEAD + 20;

/// What one value the VM moves may count besides the longest constant or parameter: 20
/// bytes for an integer as text, and in a record at most 9 bytes of serial type (an
/// integer takes at most 8 bytes there; a record's header size, counted as one more value,
/// at most 9).
const MOVED_VALUE_BOUND: u64 = 9 + 20;

/// How many values' worth of bytes (each at most `MOVED_VALUE_BOUND` plus the longest
/// constant or parameter) the instructions of `program` that our SQLite patch counts as moving bytes
/// (vendor/libsqlite3-sys/dstorage-bytes-moved.patch) can move in one run, which executes
/// each instruction at most once. A record of `n` fields counts `n + 1` values (its header
/// size counts one); an insert writes a record some `MakeRecord` built, so it counts as
/// the largest of them.
fn moved_values(program: &[Op]) -> u64 {
    let record = program
        .iter()
        .filter(|op| op.opcode == "MakeRecord")
        .map(|op| u64::try_from(op.p2).unwrap_or(0).saturating_add(1))
        .max()
        .unwrap_or(1);
    let key_fields = |op: &Op| {
        op.p4
            .as_deref()
            .and_then(|p4| p4.parse::<u64>().ok())
            .filter(|&n| n > 0)
    };
    program
        .iter()
        .map(|op| match op.opcode.as_str() {
            "MakeRecord" => u64::try_from(op.p2).unwrap_or(0).saturating_add(1),
            "Insert" | "IdxInsert" => record,
            // A key in `P4` registers, or (P4 = 0) a record.
            "Found" | "NotFound" | "NoConflict" => key_fields(op).unwrap_or(record),
            "Copy" => u64::try_from(op.p3).unwrap_or(0).saturating_add(1),
            "Eq" | "Ne" | "Lt" | "Le" | "Gt" | "Ge" => 1,
            _ => 0,
        })
        .fold(0u64, u64::saturating_add)
}

impl InsertProof {
    /// The highest cost a run with `params` can be charged: its VM steps plus the byte
    /// charge of the row it writes and of the bytes the VM moves. Every value of that row
    /// is a copy of a constant or a parameter, or an integer, or one of those cast to text
    /// (the proven opcodes cannot make a longer value: no functions, no concatenation), and
    /// a parameter may fill several columns, so each column counts the longest of them; the
    /// bytes moved are bounded the same way, per value an instruction moves
    /// (`moved_values`).
    pub(crate) fn cost_bound(&self, params: &[dstorage_types::value::Value]) -> u64 {
        use dstorage_types::value::Value;
        let longest_param = params
            .iter()
            .map(|p| match p {
                Value::Text(t) => t.len() as u64,
                Value::Blob(b) => b.len() as u64,
                Value::Null | Value::Integer(_) => 0,
            })
            .max()
            .unwrap_or(0);
        let longest = longest_param.max(self.longest_constant);
        let written = self
            .columns
            .saturating_mul(VALUE_BOUND.saturating_add(longest));
        let moved = self
            .moved_values
            .saturating_mul(MOVED_VALUE_BOUND.saturating_add(longest));
        let bytes = written.saturating_add(moved);
        self.steps
            .saturating_add(bytes.div_ceil(crate::meter::BYTES_PER_STEP))
    }
}

/// The proof for `program`, writing a row of `columns` values, if it may run without a
/// savepoint (see the module documentation).
pub(crate) fn prove(program: &[Op], columns: u64) -> Option<InsertProof> {
    let steps = step_bound(program)?;
    let longest_constant = program
        .iter()
        .filter(|op| matches!(op.opcode.as_str(), "String8" | "String" | "Blob"))
        .map(|op| op.p4_len.max(u64::try_from(op.p1).unwrap_or(0)))
        .max()
        .unwrap_or(0);
    Some(InsertProof {
        steps,
        columns,
        longest_constant,
        moved_values: moved_values(program),
    })
}

/// The most VM steps any run of `program` can take, if it may run without a savepoint
/// (see the module documentation); None if that cannot be shown.
pub(crate) fn step_bound(program: &[Op]) -> Option<u64> {
    let len = program.len();
    if len == 0 {
        return None;
    }
    let mut edges = Vec::with_capacity(len);
    for (addr, op) in program.iter().enumerate() {
        let halts_with_error = matches!(op.opcode.as_str(), "Halt" | "HaltIfNull") && op.p1 != 0;
        if halts_with_error && op.p2 != OE_ABORT {
            return None;
        }
        edges.push(successors(op, addr, len)?);
    }
    if has_cycle(&edges) {
        return None;
    }
    // Everything reachable from a write must be unable to fail.
    let mut seen = vec![false; len];
    let mut stack: Vec<usize> = (0..len).filter(|&a| writes(&program[a])).collect();
    while let Some(a) = stack.pop() {
        if std::mem::replace(&mut seen[a], true) {
            continue;
        }
        if !cannot_fail(&program[a]) {
            return None;
        }
        stack.extend(edges[a].iter().copied());
    }
    u64::try_from(len).ok()
}

/// Whether the graph reachable from instruction 0 has a cycle (iterative depth-first
/// search; a program has at most a few thousand instructions, but no recursion anyway).
fn has_cycle(edges: &[Vec<usize>]) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut mark = vec![Mark::New; edges.len()];
    // (node, index of the next edge to follow)
    let mut path = vec![(0usize, 0usize)];
    mark[0] = Mark::OnPath;
    while let Some((node, i)) = path.last_mut() {
        let node = *node;
        if let Some(&to) = edges[node].get(*i) {
            *i += 1;
            match mark[to] {
                Mark::OnPath => return true,
                Mark::New => {
                    mark[to] = Mark::OnPath;
                    path.push((to, 0));
                }
                Mark::Done => {}
            }
        } else {
            mark[node] = Mark::Done;
            path.pop();
        }
    }
    false
}

/// The program SQLite compiles for `sql` (the caller sets the authorizer mode the
/// statement runs under, since `EXPLAIN` compiles it the same way).
pub(crate) fn explain(conn: &Connection, sql: &str) -> rusqlite::Result<Vec<Op>> {
    let mut stmt = conn.prepare(&format!("EXPLAIN {sql}"))?;
    // EXPLAIN lists the program without binding the statement's placeholders.
    let mut rows = stmt.raw_query();
    let mut program = Vec::new();
    while let Some(row) = rows.next()? {
        let p4_len = match row.get_ref(5)? {
            rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => t.len(),
            _ => 0,
        };
        program.push(Op {
            addr: row.get(0)?,
            opcode: row.get(1)?,
            p1: row.get(2)?,
            p2: row.get(3)?,
            p3: row.get(4)?,
            p4_len: p4_len as u64,
            p4: match row.get_ref(5)? {
                rusqlite::types::ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
                rusqlite::types::ValueRef::Integer(i) => Some(i.to_string()),
                _ => None,
            },
        });
    }
    Ok(program)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(ops: &[(&str, i64, i64)]) -> Vec<Op> {
        ops.iter()
            .enumerate()
            .map(|(addr, &(opcode, p1, p2))| Op {
                addr: addr as i64,
                opcode: opcode.to_owned(),
                p1,
                p2,
                p3: 0,
                p4_len: 0,
                p4: None,
            })
            .collect()
    }

    /// `INSERT INTO "app.t" VALUES (?1, ?2, ?3)` as SQLite 3.54.1 compiles it for
    /// `t(id INTEGER PRIMARY KEY, name TEXT NOT NULL, n INTEGER NOT NULL) STRICT`.
    fn insert() -> Vec<(&'static str, i64, i64)> {
        vec![
            ("Init", 0, 19),
            ("OpenWrite", 0, 4),
            ("SoftNull", 2, 0),
            ("Variable", 2, 3),
            ("Variable", 3, 4),
            ("Variable", 1, 1),
            ("NotNull", 1, 8),
            ("NewRowid", 0, 1),
            ("MustBeInt", 1, 0),
            ("HaltIfNull", 1299, 2),
            ("HaltIfNull", 1299, 2),
            ("TypeCheck", 2, 3),
            ("Lt", 7, 14),
            ("Halt", 275, 2),
            ("NotExists", 0, 16),
            ("Halt", 1555, 2),
            ("MakeRecord", 2, 3),
            ("Insert", 0, 5),
            ("Halt", 0, 0),
            ("Transaction", 0, 1),
            ("Int64", -1, 7),
            ("Goto", 0, 1),
        ]
    }

    #[test]
    fn a_plain_insert_is_bounded_by_its_length() {
        assert_eq!(step_bound(&program(&insert())), Some(22));
    }

    #[test]
    fn the_bytes_a_plain_insert_moves_are_bounded_by_its_records() {
        // A record of 3 fields (4 values with its header's size), built and written, and
        // one comparison.
        assert_eq!(moved_values(&program(&insert())), 4 + 4 + 1);
        let proof = prove(&program(&insert()), 3).expect("proven");
        let text = dstorage_types::value::Value::Text("x".repeat(100));
        // Steps, then 3 written values and 9 moved ones of at most 100 bytes each.
        assert_eq!(
            proof.cost_bound(&[text]),
            22 + (3 * (VALUE_BOUND + 100) + 9 * (MOVED_VALUE_BOUND + 100)).div_ceil(8)
        );
    }

    #[test]
    fn a_concatenation_fails_the_proof() {
        // Regression: `||` was allowed, so a value could be longer than the longest
        // parameter the bound counts; a run then cost more than its bound (BlockAborted).
        let mut ops = insert();
        ops[4] = ("Concat", 2, 2);
        assert_eq!(step_bound(&program(&ops)), None);
    }

    #[test]
    fn a_loop_fails_the_proof() {
        let mut ops = insert();
        // The constraint check jumps back to the start of the body.
        ops[14] = ("NotExists", 0, 2);
        assert_eq!(step_bound(&program(&ops)), None);
    }

    #[test]
    fn a_fail_or_rollback_resolution_fails_the_proof() {
        for resolution in [1, 3] {
            let mut ops = insert();
            ops[15] = ("Halt", 1555, resolution);
            assert_eq!(step_bound(&program(&ops)), None, "OE {resolution}");
            let mut ops = insert();
            ops[9] = ("HaltIfNull", 1299, resolution);
            assert_eq!(step_bound(&program(&ops)), None, "OE {resolution}");
        }
    }

    #[test]
    fn a_check_after_the_write_fails_the_proof() {
        let mut ops = insert();
        // The key check moved after the write: the row would be in when it fails.
        ops[14] = ("MakeRecord", 2, 3);
        ops[15] = ("Insert", 0, 5);
        ops[16] = ("NotExists", 0, 18);
        ops[17] = ("Halt", 1555, 2);
        assert_eq!(step_bound(&program(&ops)), None);
    }

    #[test]
    fn unknown_opcodes_and_jumps_out_of_the_program_fail_the_proof() {
        for (addr, op) in [
            (7, ("Program", 0, 9)),
            (7, ("Gosub", 3, 9)),
            (7, ("Delete", 0, 0)),
            (7, ("FkCounter", 1, 1)),
            (6, ("NotNull", 1, 99)),
            (6, ("NotNull", 1, -1)),
        ] {
            let mut ops = insert();
            ops[addr] = op;
            assert_eq!(step_bound(&program(&ops)), None, "{op:?}");
        }
        assert_eq!(step_bound(&[]), None);
    }
}
