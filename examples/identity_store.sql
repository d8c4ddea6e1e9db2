-- An idOS-style identity store (docs/schemas.md walks through it).
--
-- Humans own wallets (any address or key of any supported standard), credentials (content encrypted by the
-- client; the network never sees plaintext) and attributes. A human shares a credential by writing a copy
-- re-encrypted for the grantee and granting the grantee access to that copy (`dstorage grant --data-id`);
-- the grantee reads the copy only while such a grant exists.
--
-- Every action finds the caller's human through the wallet that signed (@caller), so one identity can never
-- write another human's rows: the rule is in the action's own SQL.

CREATE TABLE humans (
  id         TEXT PRIMARY KEY,              -- chosen by the client (e.g. a UUID)
  created_at INTEGER NOT NULL               -- @block_time of the creating call
) STRICT;

CREATE TABLE wallets (
  address    TEXT PRIMARY KEY,              -- the wallet's identity string (docs/auth.md)
  human_id   TEXT NOT NULL REFERENCES humans(id),
  standard   TEXT NOT NULL,                 -- signature standard, e.g. eth_personal_sign, near_nep413
  public_key BLOB,                          -- where known
  added_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX wallets_human ON wallets(human_id);

CREATE TABLE credentials (
  id          TEXT PRIMARY KEY,             -- chosen by the client
  human_id    TEXT NOT NULL REFERENCES humans(id),
  issuer      TEXT NOT NULL,
  type        TEXT NOT NULL,
  content     BLOB NOT NULL,                -- encrypted by the client
  original_id TEXT,                         -- a shared copy: the credential it copies
  grantee     TEXT,                         -- a shared copy: the identity it is encrypted for
  updated_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX credentials_human ON credentials(human_id);

CREATE TABLE attributes (
  human_id TEXT NOT NULL REFERENCES humans(id),
  name     TEXT NOT NULL,
  value    TEXT NOT NULL,
  PRIMARY KEY (human_id, name)
) STRICT;

-- Become a human: the signing wallet is its first wallet. A wallet belongs to one human only.
CREATE ACTION create_human($id TEXT) AUTHENTICATED AS BEGIN
  SELECT CASE WHEN EXISTS (SELECT 1 FROM wallets WHERE address = @caller)
              THEN error('this wallet already belongs to a human') END;
  INSERT INTO humans (id, created_at) VALUES ($id, @block_time);
  INSERT INTO wallets (address, human_id, standard, public_key, added_at)
    VALUES (@caller, $id, @caller_standard, @caller_key, @block_time);
END;

-- Add another wallet (address of any standard) to the caller's human.
CREATE ACTION add_wallet($address TEXT, $standard TEXT, $public_key BLOB NULL) AUTHENTICATED AS BEGIN
  SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM wallets WHERE address = @caller)
              THEN error('the signing wallet belongs to no human') END;
  SELECT CASE WHEN EXISTS (SELECT 1 FROM wallets WHERE address = $address)
              THEN error('that wallet already belongs to a human') END;
  INSERT INTO wallets (address, human_id, standard, public_key, added_at)
    SELECT $address, human_id, $standard, $public_key, @block_time FROM wallets WHERE address = @caller;
END;

CREATE ACTION add_credential($id TEXT, $issuer TEXT, $type TEXT, $content BLOB) AUTHENTICATED AS BEGIN
  SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM wallets WHERE address = @caller)
              THEN error('the signing wallet belongs to no human') END;
  INSERT INTO credentials (id, human_id, issuer, type, content, original_id, grantee, updated_at)
    SELECT $id, human_id, $issuer, $type, $content, NULL, NULL, @block_time FROM wallets WHERE address = @caller;
END;

-- Only the credential's own human may change or remove it; a shared copy is changed by sharing again.
CREATE ACTION edit_credential($id TEXT, $content BLOB) AUTHENTICATED AS BEGIN
  SELECT CASE WHEN NOT EXISTS (
      SELECT 1 FROM credentials c JOIN wallets w ON w.human_id = c.human_id
      WHERE c.id = $id AND w.address = @caller AND c.original_id IS NULL)
    THEN error('no such credential of yours') END;
  UPDATE credentials SET content = $content, updated_at = @block_time WHERE id = $id;
END;

CREATE ACTION remove_credential($id TEXT) AUTHENTICATED AS BEGIN
  SELECT CASE WHEN NOT EXISTS (
      SELECT 1 FROM credentials c JOIN wallets w ON w.human_id = c.human_id
      WHERE c.id = $id AND w.address = @caller)
    THEN error('no such credential of yours') END;
  DELETE FROM credentials WHERE id = $id;
END;

-- Store a copy of one's credential re-encrypted for `grantee`; then grant the grantee access to $copy_id.
CREATE ACTION share_credential($id TEXT, $copy_id TEXT, $grantee TEXT, $content BLOB) AUTHENTICATED AS BEGIN
  SELECT CASE WHEN NOT EXISTS (
      SELECT 1 FROM credentials c JOIN wallets w ON w.human_id = c.human_id
      WHERE c.id = $id AND w.address = @caller AND c.original_id IS NULL)
    THEN error('no such credential of yours') END;
  INSERT INTO credentials (id, human_id, issuer, type, content, original_id, grantee, updated_at)
    SELECT $copy_id, human_id, issuer, type, $content, id, $grantee, @block_time
    FROM credentials WHERE id = $id;
END;

CREATE ACTION set_attribute($name TEXT, $value TEXT) AUTHENTICATED AS BEGIN
  SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM wallets WHERE address = @caller)
              THEN error('the signing wallet belongs to no human') END;
  DELETE FROM attributes WHERE name = $name
    AND human_id = (SELECT human_id FROM wallets WHERE address = @caller);
  INSERT INTO attributes (human_id, name, value)
    SELECT human_id, $name, $value FROM wallets WHERE address = @caller;
END;

-- The caller's own credentials (originals and the copies they shared), without content.
CREATE VIEW ACTION list_my_credentials() AUTHENTICATED AS BEGIN
  SELECT c.id, c.issuer, c.type, c.original_id, c.grantee, c.updated_at
  FROM credentials c JOIN wallets w ON w.human_id = c.human_id
  WHERE w.address = @caller;
END;

CREATE VIEW ACTION get_my_credential($id TEXT) AUTHENTICATED AS BEGIN
  SELECT c.id, c.issuer, c.type, c.content
  FROM credentials c JOIN wallets w ON w.human_id = c.human_id
  WHERE c.id = $id AND w.address = @caller;
END;

CREATE VIEW ACTION list_my_attributes() AUTHENTICATED AS BEGIN
  SELECT a.name, a.value FROM attributes a JOIN wallets w ON w.human_id = a.human_id
  WHERE w.address = @caller;
END;

-- A shared copy, for its grantee only, and only while one of its human's wallets grants the caller access
-- to it (the grants table; `dstorage grant`).
CREATE VIEW ACTION get_shared_credential($id TEXT) AUTHENTICATED AS BEGIN
  SELECT CASE WHEN NOT EXISTS (
      SELECT 1 FROM credentials c JOIN wallets w ON w.human_id = c.human_id
      WHERE c.id = $id AND c.grantee = @caller AND has_grant(w.address, @caller, c.id))
    THEN error('no grant for this credential') END;
  SELECT id, issuer, type, content FROM credentials WHERE id = $id;
END;

-- How many humans the store holds: public, callable unsigned.
CREATE VIEW ACTION count_humans() PUBLIC AS BEGIN
  SELECT count(*) AS humans FROM humans;
END;
