-- +goose Up
-- When an embedding call for a memory last failed (an outage or a refusal).
-- A turn embeds the rows it stored itself; rows another turn stored are that
-- turn's to embed while it runs, and become anyone's once a failure marked
-- them (or they are old: that turn died). Concurrent turns of one end user
-- then never embed, and lock, the same rows.
ALTER TABLE memories ADD COLUMN embed_tried_at timestamptz;

-- +goose Down
ALTER TABLE memories DROP COLUMN embed_tried_at;
