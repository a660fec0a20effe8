-- +goose Up
-- The turn whose message brought each image (issue 9): the portal shows an
-- image under the message it came with — also a message sent while people
-- own the conversation, which reaches staff only through the portal. NULL
-- for images stored before this column existed.
ALTER TABLE media ADD COLUMN turn integer CHECK (turn IS NULL OR turn >= 1);

-- +goose Down
ALTER TABLE media DROP COLUMN IF EXISTS turn;
