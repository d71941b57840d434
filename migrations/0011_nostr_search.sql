-- NIP-50 search over the content of stored Nostr events: an FTS5 index of nostr_events.content
-- (external content: the text is not stored twice), trigram-tokenized so that a search term
-- matches as a case-insensitive substring in any script (CJK has no spaces between words).
-- The triggers keep it in step with nostr_events; bridges/nostr/store.ts is its only reader.
-- IF NOT EXISTS: a database rolled back to an older schema by dropping its tables (as
-- test/storage/contents-migration.test.ts does) keeps this table, and takes the migration again.
CREATE VIRTUAL TABLE IF NOT EXISTS `nostr_search` USING fts5(`content`, content='nostr_events', content_rowid='seq', tokenize='trigram case_sensitive 0');
--> statement-breakpoint
CREATE TRIGGER IF NOT EXISTS `nostr_search_insert` AFTER INSERT ON `nostr_events` BEGIN
  INSERT INTO `nostr_search` (rowid, `content`) VALUES (new.`seq`, new.`content`);
END;
--> statement-breakpoint
CREATE TRIGGER IF NOT EXISTS `nostr_search_delete` AFTER DELETE ON `nostr_events` BEGIN
  INSERT INTO `nostr_search` (`nostr_search`, rowid, `content`) VALUES ('delete', old.`seq`, old.`content`);
END;
--> statement-breakpoint
CREATE TRIGGER IF NOT EXISTS `nostr_search_update` AFTER UPDATE OF `content` ON `nostr_events` BEGIN
  INSERT INTO `nostr_search` (`nostr_search`, rowid, `content`) VALUES ('delete', old.`seq`, old.`content`);
  INSERT INTO `nostr_search` (rowid, `content`) VALUES (new.`seq`, new.`content`);
END;
