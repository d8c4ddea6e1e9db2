//! Where every name lives: a user's table, view or index name resolved in its schema and renamed to its
//! physical name, and the CTE names in scope.

use super::*;

impl Guard<'_> {
    pub(super) fn is_cte(&self, name: &QualName) -> bool {
        name.schema.is_none() && {
            let lower = name.name.text.to_ascii_lowercase();
            self.scopes.iter().any(|s| s.contains_key(&lower))
        }
    }

    /// Resolve a user-written object name to (schema, canonical object name).
    pub(super) fn resolve(&self, name: &QualName) -> Result<(String, String), SqlError> {
        match &name.schema {
            None => Ok((
                self.schema.to_owned(),
                canonical_object_name(&name.name.text)?,
            )),
            Some(s) => {
                validate_schema_name(&s.text)?;
                Ok((s.text.clone(), canonical_object_name(&name.name.text)?))
            }
        }
    }

    /// Rename a table or view reference to its physical name; returns the physical name.
    pub(super) fn rename(&mut self, name: &QualName) -> Result<String, SqlError> {
        let (s, t) = self.resolve(name)?;
        let physical = physical_name(&s, &t);
        self.replace(name.first(), name.last(), quote_ident(&physical));
        self.tables.insert(physical.clone());
        Ok(physical)
    }

    /// Rename an object the statement creates, drops or writes: it must be in the
    /// statement's own schema.
    pub(super) fn rename_own(&mut self, name: &QualName) -> Result<String, SqlError> {
        let (s, t) = self.resolve(name)?;
        if s != self.schema {
            return Err(SqlError::CrossSchemaWrite {
                schema: self.schema.to_owned(),
                target: physical_name(&s, &t),
            });
        }
        self.rename(name)
    }

    /// Rename a single unqualified name token of the statement's schema (an index in
    /// INDEXED BY, the table of CREATE INDEX, a foreign key's parent).
    pub(super) fn rename_token(&mut self, name: &Name, schema: &str) -> Result<String, SqlError> {
        let physical = physical_name(schema, &canonical_object_name(&name.text)?);
        self.replace(name.tok, name.tok, quote_ident(&physical));
        Ok(physical)
    }

    /// SQLite names an unaliased result column by its text; where the guard changed that
    /// text (a physical name, an added ORDER BY), alias the column with the user's own
    /// text so the name stays what the user wrote.
    pub(super) fn keep_column_names(&mut self, s: &Select) {
        let Some(Core::Select(c)) = s.cores.first() else {
            return;
        };
        for col in &c.columns {
            let ResultColumn::Expr { expr, alias: None } = col else {
                continue;
            };
            let (first, last) = (expr.first, expr.last);
            let touched = self.edits.iter().any(|e| match e {
                Edit::Replace { first: f, .. } => (first..=last).contains(f),
                Edit::Insert { after, .. } => (first..last).contains(after),
            });
            if touched {
                let text = &self.sql[self.toks[first].start..self.toks[last].end];
                self.insert(last, Place::Tail, format!(" AS {} ", quote_ident(text)));
            }
        }
    }

    /// RETURNING resolves a qualified column against the target's real name only (not
    /// its alias), so the user's `t.c` there must name the physical table.
    pub(super) fn returning_names(
        &mut self,
        r: &Returning,
        table: &QualName,
    ) -> Result<(), SqlError> {
        let own = table.name.text.to_ascii_lowercase();
        let physical = {
            let (s, t) = self.resolve(table)?;
            physical_name(&s, &t)
        };
        let mut renames = Vec::new();
        for col in &r.columns {
            if let ResultColumn::Expr { expr, .. } = col {
                collect_qualified(expr, &own, &mut renames);
            }
        }
        for tok in renames {
            self.replace(tok, tok, quote_ident(&physical));
        }
        Ok(())
    }

    /// The target of an UPDATE or DELETE: renamed, aliased, with its key.
    pub(super) fn target(
        &mut self,
        table: &QualName,
        alias: Option<&Name>,
        indexed_by: Option<&Name>,
    ) -> Result<(String, Item), SqlError> {
        let physical = self.rename_own(table)?;
        let user = canonical_object_name(&table.name.text)?;
        let qualifier = match alias {
            Some(a) => a.text.clone(),
            None => {
                self.insert(
                    table.last(),
                    Place::Alias,
                    format!(" AS {} ", quote_ident(&user)),
                );
                user
            }
        };
        if let Some(ix) = indexed_by {
            let schema = self.schema.to_owned();
            self.rename_token(ix, &schema)?;
        }
        self.aliases.insert(qualifier.clone(), physical.clone());
        let key = self.catalog.primary_key(&physical);
        let column = key.as_ref().and_then(|k| k.first().cloned());
        Ok((
            physical,
            Item {
                qualifier,
                key,
                column,
            },
        ))
    }

    /// Push the CTE names of `with` as a scope and check their bodies.
    pub(super) fn with(&mut self, with: Option<&With>) -> Result<bool, SqlError> {
        let Some(with) = with else {
            return Ok(false);
        };
        let mut names = BTreeMap::new();
        for cte in &with.ctes {
            let name = cte.name.text.to_ascii_lowercase();
            if name.starts_with('_') || name.starts_with("sqlite") || name.contains('.') {
                return Err(refused(
                    format!("CTE name {name}"),
                    "CTE names may not start with _ or sqlite or contain a dot",
                ));
            }
            let column = match cte.columns.first() {
                Some(c) => Some(c.text.clone()),
                None => first_column(&cte.select),
            };
            names.insert(name.clone(), column);
            self.ctes.insert(name);
        }
        self.scopes.push(names);
        // A CTE's query may be copied into the query that reads it: count it as nested.
        self.depth += 1;
        let checked = with
            .ctes
            .iter()
            .try_for_each(|cte| self.select(&cte.select, Need::Nothing));
        self.depth -= 1;
        checked?;
        Ok(true)
    }

    pub(super) fn pop(&mut self, pushed: bool) {
        if pushed {
            self.scopes.pop();
        }
    }
}
