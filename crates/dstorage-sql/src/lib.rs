//! Run SQL deterministically on SQLite and record each block's canonical changeset.
