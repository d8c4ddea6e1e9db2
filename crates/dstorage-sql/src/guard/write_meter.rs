//! Meter injection: `dstorage_meter(...)` first in the WHERE of every core of a write, naming a column of
//! every joined item, so the cost meter sees each row a write's loops visit.

use super::*;

impl Guard<'_> {
    /// Put `dstorage_meter(...)` first in the WHERE of a core of a write statement, so a
    /// write past its budget fails with an ordinary error instead of being interrupted
    /// (see `Meter::tick`). SQLite evaluates a WHERE term in the innermost loop over the
    /// tables it names, so the call names a column of every FROM item; with one item it
    /// needs none (the function is not deterministic, so SQLite never hoists it out of the
    /// loop).
    pub(super) fn gate(
        &mut self,
        items: &[Item],
        where_: Option<&(Tix, Expr)>,
        clause_end: Tix,
    ) -> Result<(), SqlError> {
        if !self.meter || items.is_empty() {
            return Ok(());
        }
        let mut args = Vec::new();
        // A query inside another may be copied into the outer one's loops (a view, a FROM
        // subquery, a CTE), where a call naming no table would run only once per outer
        // row: there it names its tables too, wherever it can.
        let nested = self.depth > 1;
        let nameable = items
            .iter()
            .all(|i| i.column.is_some() && !i.qualifier.is_empty());
        if items.len() > 1 || (nested && nameable) {
            for item in items {
                match (&item.column, item.qualifier.is_empty()) {
                    (Some(col), false) => args.push(format!(
                        "{}.{}",
                        quote_ident(&item.qualifier),
                        quote_ident(col)
                    )),
                    _ => {
                        return Err(refused(
                            "a join with a subquery, CTE or view in a write",
                            "the write meter must name a column of every joined item; join \
                             tables directly, or read the subquery into the statement another way",
                        ))
                    }
                }
            }
        }
        let call = format!("{}({})", crate::meter::METER_FUNCTION, args.join(", "));
        match where_ {
            Some((tok, e)) => {
                self.insert(*tok, Place::Tail, format!(" {call} AND ( "));
                self.insert(e.last, Place::CloseWhere, " ) ".into());
            }
            None => self.insert(clause_end, Place::NewWhere, format!(" WHERE {call} ")),
        }
        Ok(())
    }
}
