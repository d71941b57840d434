-- Tokens were stored in plaintext, keyed by the token. SQLite has no SHA-256, so the old rows are
-- set aside here and moved into api_tokens, hashed, by hashPlaintextTokens()
-- (src/storage/api-tokens.ts) when ChainStore opens the database; it then drops the old table.
ALTER TABLE `api_tokens` RENAME TO `api_tokens_plaintext`;--> statement-breakpoint
CREATE TABLE `api_tokens` (
	`token_hash` text PRIMARY KEY NOT NULL,
	`id` text NOT NULL,
	`name` text NOT NULL,
	`role` text NOT NULL,
	`group_id` text NOT NULL,
	`expires_at` integer NOT NULL,
	`revoked` integer DEFAULT false NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `api_tokens_id` ON `api_tokens` (`id`);
