-- API keys (Store.create_key ...): the public record and the SHA-256 of the key, never the key.
CREATE TABLE api_keys (
    id         text PRIMARY KEY,                -- the key's public prefix
    key_hash   text NOT NULL UNIQUE,
    user_name  text NOT NULL,
    role       text NOT NULL CHECK (role IN ('user', 'operator', 'admin')),
    label      text,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX api_keys_created ON api_keys (created_at DESC, id DESC);
