-- Token revocation (`auftrag token revoke --person P`): a person's token
-- epoch, embedded in every token issued to them (claim `ep`); tokens of an
-- older epoch are refused. A person without a row has epoch 0 (tokens
-- issued before this table existed carry none, which counts as 0).
CREATE TABLE auftrag_token_epochs (
    person TEXT PRIMARY KEY,
    epoch  BIGINT NOT NULL
);
