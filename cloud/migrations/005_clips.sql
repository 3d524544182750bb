-- Video clips are image requests too (CONTRACT §9): the same rows, told apart by kind;
-- a clip's WebM sits where a photo's JPEG does.
ALTER TABLE photos ADD COLUMN kind TEXT NOT NULL DEFAULT 'photo';
