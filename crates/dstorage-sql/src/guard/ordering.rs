//! Guaranteed ordering: the default ORDER BY of a query, total orders for order-sensitive aggregates and
//! RETURNING, and refusing values SQLite would take from a row its plan chooses.

use super::*;

/// Aggregates whose result depends on input order: they must carry their own ORDER BY.
pub(super) const ORDER_SENSITIVE_AGGREGATES: &[&str] = &["group_concat", "string_agg"];

/// Aggregate functions (with one argument for min/max).
pub(super) const AGGREGATES: &[&str] =
    &["count", "sum", "min", "max", "group_concat", "string_agg"];

/// Whether a query's order must be defined where it stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Need {
    /// Its rows reach a result, pick a first row, or feed an insert: define the order.
    Order,
    /// Only if it has a LIMIT.
    Nothing,
    /// Never: its rows only tell whether there are any (EXISTS).
    Never,
}

/// The name of a query's first result column, where it can be told from the text: an
/// alias, a column's own name, or `column1` of a VALUES list.
pub(super) fn first_column(s: &Select) -> Option<String> {
    match s.cores.first()? {
        Core::Values { .. } => Some("column1".into()),
        Core::Select(c) => match c.columns.first()? {
            ResultColumn::Expr { alias: Some(a), .. } => Some(a.text.clone()),
            ResultColumn::Expr { expr, .. } => match &expr.kind {
                ExprKind::Column { column, .. } => Some(column.text.clone()),
                _ => None,
            },
            _ => None,
        },
    }
}

pub(super) fn bare_column_refused(column: &str) -> SqlError {
    refused(
        format!("column {column} next to an aggregate"),
        "SQLite would take its value from a row the query plan picks; add it to GROUP BY \
         or aggregate it (min, max, group_concat)",
    )
}

/// The result aliases of a core, lower case (HAVING and ORDER BY may name them).
pub(super) fn result_aliases(c: &SelectCore) -> BTreeSet<String> {
    c.columns
        .iter()
        .filter_map(|r| match r {
            ResultColumn::Expr { alias: Some(a), .. } => Some(a.text.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

pub(super) fn is_aggregate_call(f: &Function) -> bool {
    let name = f.name.text.to_ascii_lowercase();
    AGGREGATES.contains(&name.as_str())
        && !(matches!(name.as_str(), "min" | "max") && f.args.len() > 1)
}

/// Whether expression `e` (outside subqueries) calls an aggregate.
pub(super) fn has_aggregate(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Function(f) if is_aggregate_call(f) => true,
        ExprKind::Subquery(_) | ExprKind::Exists(_) | ExprKind::InSelect { .. } => false,
        _ => {
            let mut found = false;
            for_each_child(e, &mut |c| found = found || has_aggregate(c));
            found
        }
    }
}

pub(super) fn is_aggregate_query(c: &SelectCore) -> bool {
    !c.group_by.is_empty()
        || c.columns.iter().any(|r| match r {
            ResultColumn::Expr { expr, .. } => has_aggregate(expr),
            _ => false,
        })
        || c.having.as_ref().is_some_and(has_aggregate)
}

pub(super) fn contains_subquery(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Subquery(_) | ExprKind::Exists(_) | ExprKind::InSelect { .. } => true,
        _ => {
            let mut found = false;
            for_each_child(e, &mut |c| found = found || contains_subquery(c));
            found
        }
    }
}

/// The order-sensitive aggregate calls in `e`, outside subqueries.
pub(super) fn collect_order_sensitive(e: &Expr, out: &mut Vec<Function>) {
    match &e.kind {
        ExprKind::Function(f)
            if ORDER_SENSITIVE_AGGREGATES.contains(&f.name.text.to_ascii_lowercase().as_str()) =>
        {
            out.push((**f).clone());
        }
        ExprKind::Subquery(_) | ExprKind::Exists(_) | ExprKind::InSelect { .. } => return,
        _ => {}
    }
    for_each_child(e, &mut |c| collect_order_sensitive(c, out));
}

/// The qualifier tokens of columns `own.c` in `e` (outside subqueries).
pub(super) fn collect_qualified(e: &Expr, own: &str, out: &mut Vec<Tix>) {
    if let ExprKind::Column {
        schema: None,
        table: Some(t),
        ..
    } = &e.kind
    {
        if t.text.eq_ignore_ascii_case(own) {
            out.push(t.tok);
        }
    }
    for_each_child(e, &mut |c| collect_qualified(c, own, out));
}

/// The names a FROM list's items go by (aliases, or table names), lower case.
pub(super) fn collect_qualifiers(items: &[FromItem], out: &mut BTreeSet<String>) {
    for item in items {
        // With an alias, the table's own name no longer qualifies its columns.
        if let Some(a) = &item.alias {
            out.insert(a.text.to_ascii_lowercase());
        }
        match &item.source {
            Source::Table(n) | Source::Function(n) if item.alias.is_none() => {
                out.insert(n.name.text.to_ascii_lowercase());
            }
            Source::Nested(f) => collect_qualifiers(&f.items, out),
            Source::Table(_) | Source::Function(_) | Source::Subquery(_) => {}
        }
    }
}

impl Guard<'_> {
    /// RETURNING of an UPDATE or DELETE: append the target's key so the engine can sort.
    pub(super) fn returning_in_key_order(
        &mut self,
        r: &Returning,
        target: &Item,
        out: &mut RewriteFacts,
    ) -> Result<(), SqlError> {
        self.result_columns(&r.columns)?;
        if let Some(key) = &target.key {
            // RETURNING reads only the target, and SQLite refuses qualified names there.
            let cols: Vec<String> = key.iter().map(|k| quote_ident(k)).collect();
            self.insert(r.last, Place::Tail, format!(", {} ", cols.join(", ")));
            out.returning_keys = key.len();
        }
        Ok(())
    }

    /// Append the default order to `s`: the primary keys of its FROM tables in order, or
    /// every result column where a FROM item has no key (views, CTEs, subqueries), the
    /// query is DISTINCT or grouped, or it is compound.
    pub(super) fn add_ordering(&mut self, s: &Select, items: &[Item]) -> Result<(), SqlError> {
        let terms = match s.cores.as_slice() {
            [Core::Values { .. }] => return Ok(()),
            [Core::Select(c)] if !c.distinct && c.group_by.is_empty() => {
                if c.from.is_none() || is_aggregate_query(c) {
                    return Ok(());
                }
                let mut terms = Vec::new();
                let mut keyed = true;
                for item in items {
                    match &item.key {
                        Some(key) if !key.is_empty() && !item.qualifier.is_empty() => {
                            for k in key {
                                terms.push(format!(
                                    "{}.{}",
                                    quote_ident(&item.qualifier),
                                    quote_ident(k)
                                ));
                            }
                        }
                        _ => keyed = false,
                    }
                }
                if keyed {
                    terms
                } else {
                    self.positional_order(s)?
                }
            }
            _ => self.positional_order(s)?,
        };
        if terms.is_empty() {
            return Ok(());
        }
        match &s.order_by {
            Some(ob) => self.insert(ob.last(), Place::Order, format!(", {} ", terms.join(", "))),
            None => self.insert(
                s.body_last(),
                Place::Order,
                format!(" ORDER BY {} ", terms.join(", ")),
            ),
        }
        Ok(())
    }

    /// `1, 2, ..., n` over every result column.
    pub(super) fn positional_order(&mut self, s: &Select) -> Result<Vec<String>, SqlError> {
        let n = match s.cores.first() {
            Some(Core::Select(c))
                if !c
                    .columns
                    .iter()
                    .any(|r| !matches!(r, ResultColumn::Expr { .. })) =>
            {
                c.columns.len()
            }
            Some(Core::Values { rows, .. }) => rows.first().map_or(0, Vec::len),
            Some(Core::Select(c)) => match self.star_width(c) {
                Some(n) => n,
                None => {
                    // SQLite counts what this cannot (USING and NATURAL joins merge
                    // columns): prepare the query as rewritten so far. (A subquery that
                    // names outer columns does not prepare alone; it then fails here.)
                    let body = self.render(s.first, s.body_last(), false)?;
                    self.catalog.column_count(&body, &self.ctes)?
                }
            },
            None => 0,
        };
        Ok((1..=n).map(|i| i.to_string()).collect())
    }

    /// The number of result columns of a core with `*` or `t.*`, counted from the tables'
    /// widths, where that is certain: no USING or NATURAL join, every item a table or view
    /// (CTEs and subqueries name no width here).
    pub(super) fn star_width(&self, c: &SelectCore) -> Option<usize> {
        let from = c.from.as_ref()?;
        let mut widths: Vec<(String, usize)> = Vec::new();
        let mut stack: Vec<&FromItem> = from.items.iter().rev().collect();
        while let Some(item) = stack.pop() {
            if !item.using.is_empty()
                || item
                    .join
                    .is_some_and(|(t, _)| self.tok_text(t).eq_ignore_ascii_case("natural"))
            {
                return None;
            }
            match &item.source {
                Source::Table(name) if !self.is_cte(name) => {
                    let (s, t) = self.resolve(name).ok()?;
                    let width = self.catalog.table_width(&physical_name(&s, &t))?;
                    let q = item
                        .alias
                        .as_ref()
                        .map_or(t, |a| a.text.to_ascii_lowercase());
                    widths.push((q, width));
                }
                Source::Nested(f) => stack.extend(f.items.iter().rev()),
                _ => return None,
            }
        }
        let mut n = 0;
        for col in &c.columns {
            n += match col {
                ResultColumn::Expr { .. } => 1,
                ResultColumn::Star(_) => widths.iter().map(|(_, w)| w).sum(),
                ResultColumn::TableStar(q) => {
                    let q = q.text.to_ascii_lowercase();
                    widths.iter().find(|(name, _)| *name == q)?.1
                }
            };
        }
        Some(n)
    }

    /// Refuse columns whose value SQLite would take from a row the plan chooses: bare
    /// columns next to aggregates. Append a tie-break to the ORDER BY of order-sensitive
    /// aggregates.
    pub(super) fn aggregates_are_determined(
        &mut self,
        c: &SelectCore,
        items: &[Item],
    ) -> Result<(), SqlError> {
        let mut calls = Vec::new();
        for col in &c.columns {
            if let ResultColumn::Expr { expr, .. } = col {
                collect_order_sensitive(expr, &mut calls);
            }
        }
        if let Some(h) = &c.having {
            collect_order_sensitive(h, &mut calls);
        }
        for f in calls {
            self.tie_break(&f, items)?;
        }
        if !is_aggregate_query(c) {
            return Ok(());
        }
        let grouped: Vec<Vec<&str>> = c
            .group_by
            .iter()
            .map(|e| self.token_texts(e.first, e.last))
            .collect();
        let aliases = result_aliases(c);
        let mut exprs: Vec<&Expr> = Vec::new();
        for col in &c.columns {
            match col {
                ResultColumn::Expr { expr, .. } => exprs.push(expr),
                ResultColumn::Star(_) | ResultColumn::TableStar(_) => {
                    return Err(bare_column_refused("*"))
                }
            }
        }
        if let Some(h) = &c.having {
            exprs.push(h);
        }
        for e in exprs {
            self.bare_columns_grouped(e, &grouped, &aliases)?;
        }
        Ok(())
    }

    /// Every column reference in `e` outside aggregate calls and subqueries is, or lies
    /// within, an expression of the GROUP BY.
    pub(super) fn bare_columns_grouped(
        &self,
        e: &Expr,
        grouped: &[Vec<&str>],
        aliases: &BTreeSet<String>,
    ) -> Result<(), SqlError> {
        let text = self.token_texts(e.first, e.last);
        if grouped.iter().any(|g| {
            g.len() == text.len() && g.iter().zip(&text).all(|(a, b)| a.eq_ignore_ascii_case(b))
        }) {
            return Ok(());
        }
        match &e.kind {
            // SQLite reads a bare TRUE or FALSE as the literal 1 or 0.
            ExprKind::Column {
                column,
                table: None,
                ..
            } if column.text.eq_ignore_ascii_case("true")
                || column.text.eq_ignore_ascii_case("false") =>
            {
                Ok(())
            }
            ExprKind::Column { column, table, .. } => {
                if self.is_grouped(table.as_ref(), column, grouped)
                    || (table.is_none() && aliases.contains(&column.text.to_ascii_lowercase()))
                {
                    Ok(())
                } else {
                    Err(bare_column_refused(&column.text))
                }
            }
            ExprKind::Function(f) if is_aggregate_call(f) => Ok(()),
            ExprKind::Subquery(s) | ExprKind::Exists(s) => {
                self.outer_refs_grouped(s, &BTreeSet::new(), grouped)
            }
            ExprKind::InSelect { expr, select, .. } => {
                self.bare_columns_grouped(expr, grouped, aliases)?;
                self.outer_refs_grouped(select, &BTreeSet::new(), grouped)
            }
            _ => {
                let mut result = Ok(());
                for_each_child(e, &mut |child| {
                    if result.is_ok() {
                        result = self.bare_columns_grouped(child, grouped, aliases);
                    }
                });
                result
            }
        }
    }

    /// Whether column `table.column` is a GROUP BY term: same column name, and the same
    /// qualifier where both name one.
    pub(super) fn is_grouped(
        &self,
        table: Option<&Name>,
        column: &Name,
        grouped: &[Vec<&str>],
    ) -> bool {
        grouped.iter().any(|g| match g.as_slice() {
            [c] => token::dequote(c).eq_ignore_ascii_case(&column.text),
            [q, ".", c] => {
                token::dequote(c).eq_ignore_ascii_case(&column.text)
                    && table.is_none_or(|t| token::dequote(q).eq_ignore_ascii_case(&t.text))
            }
            _ => false,
        })
    }

    /// Inside a subquery of an aggregate query, a column qualified with a table of the
    /// outer query (and not of the subquery) is a bare column of the outer query.
    /// (Unqualified columns are taken as the subquery's own.) `own` holds the qualifiers
    /// of the subqueries that enclose `s`, inside the aggregate query.
    pub(super) fn outer_refs_grouped(
        &self,
        s: &Select,
        own: &BTreeSet<String>,
        grouped: &[Vec<&str>],
    ) -> Result<(), SqlError> {
        let mut own = own.clone();
        for core in &s.cores {
            if let Core::Select(c) = core {
                if let Some(f) = &c.from {
                    collect_qualifiers(&f.items, &mut own);
                }
            }
        }
        let mut result = Ok(());
        for_each_expr_of_select(s, &mut |e| {
            if result.is_ok() {
                result = self.qualified_outer_refs_grouped(e, &own, grouped);
            }
        });
        result
    }

    pub(super) fn qualified_outer_refs_grouped(
        &self,
        e: &Expr,
        own: &BTreeSet<String>,
        grouped: &[Vec<&str>],
    ) -> Result<(), SqlError> {
        match &e.kind {
            ExprKind::Column {
                table: Some(t),
                column,
                ..
            } if !own.contains(&t.text.to_ascii_lowercase())
                && !self.is_grouped(Some(t), column, grouped) =>
            {
                Err(bare_column_refused(&format!("{}.{}", t.text, column.text)))
            }
            ExprKind::Subquery(s) | ExprKind::Exists(s) | ExprKind::InSelect { select: s, .. } => {
                if let ExprKind::InSelect { expr, .. } = &e.kind {
                    self.qualified_outer_refs_grouped(expr, own, grouped)?;
                }
                self.outer_refs_grouped(s, own, grouped)
            }
            _ => {
                let mut result = Ok(());
                for_each_child(e, &mut |c| {
                    if result.is_ok() {
                        result = self.qualified_outer_refs_grouped(c, own, grouped);
                    }
                });
                result
            }
        }
    }

    /// Make an order-sensitive aggregate's ORDER BY total: append the keys of the core's
    /// FROM tables (every row combination is then ordered), or, without keys, its own
    /// arguments compared byte by byte (rows that still tie give identical output).
    pub(super) fn tie_break(&mut self, f: &Function, items: &[Item]) -> Result<(), SqlError> {
        let Some(ob) = &f.order_by else {
            let name = f.name.text.to_ascii_lowercase();
            return Err(refused(
                format!("{name}() without ORDER BY"),
                format!("its result depends on row order; write {name}(x, ',' ORDER BY x)"),
            ));
        };
        let keyed = !items.is_empty()
            && items
                .iter()
                .all(|i| i.key.as_ref().is_some_and(|k| !k.is_empty()) && !i.qualifier.is_empty());
        let terms: Vec<String> = if keyed {
            items
                .iter()
                .flat_map(|i| {
                    let q = quote_ident(&i.qualifier);
                    i.key
                        .iter()
                        .flatten()
                        .map(move |k| format!("{q}.{}", quote_ident(k)))
                })
                .collect()
        } else {
            let mut terms = Vec::new();
            for a in &f.args {
                if contains_subquery(a) {
                    return Err(refused(
                        format!("{}() over a subquery, CTE or view", f.name.text),
                        "its ties cannot be ordered by key; order by columns that are unique",
                    ));
                }
                terms.push(format!(
                    "( {} ) COLLATE BINARY",
                    self.render(a.first, a.last, true)?
                ));
            }
            terms
        };
        self.insert(ob.last(), Place::Order, format!(", {} ", terms.join(", ")));
        Ok(())
    }
}
